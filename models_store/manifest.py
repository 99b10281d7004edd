"""The manifest of one published model version: the one contract between training and serving.

Training writes it, the store checks it, serving and the embedded client read it. It is plain JSON
validated by pydantic, so a file edited by hand is either understood or refused with the field named.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .geometry import GeometryTable

SCHEMA_VERSION = 1

# The four graphs every version ships, by role: psf (condition -> psf, through the prior mean), prior
# (condition -> mu, logvar), decoder (z, condition -> psf), encoder (psf, condition -> mu, logvar).
GRAPH_ROLES = ("psf", "prior", "decoder", "encoder")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LensInfo(_Strict):
    file: str = Field(description="lens prescription file name, as shipped in lenses/")
    sha256: str
    focal_length_mm: float
    f_number: float
    sensor_size_mm: tuple[float, float] = Field(description="sensor width, height [mm]")
    sensor_resolution: tuple[int, int] = Field(description="sensor width, height [pixels]")
    pixel_pitch_um: float
    half_diagonal_mm: float
    focus_m: float | None = Field(default=None, description="fixed focus distance [m]; None = infinity")
    format: str | None = Field(default=None, description="the lens reader that read the file (deeplens-json, zemax)")
    notes: tuple[str, ...] = Field(default=(), description="what the reader assumed or converted (units, glasses, "
                                   "aperture, sensor size, field and wavelength data), as inspect lists it")
    optics: Literal["geometric", "diffraction"] | None = Field(
        default=None, description="the PSF physics the model was trained and evaluated with: geometric (ray "
        "tracing) or diffraction (ray tracing convolved with the Airy pattern); None: recorded before it was")


class ConditionSpec(_Strict):
    """One entry of the condition vector, in physical units, with its trained range."""

    name: str
    unit: str
    min: float
    max: float
    description: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> ConditionSpec:
        if not (math.isfinite(self.min) and math.isfinite(self.max) and self.min < self.max):
            raise ValueError(f"condition {self.name!r}: need finite min < max, got {self.min}..{self.max}")
        return self


class GraphSpec(_Strict):
    file: str
    inputs: list[str]
    outputs: list[str]


class KernelSizing(_Strict):
    """How the kernel and ray budget were chosen from a probe of the lens, and what the kernel keeps."""

    kernel_source: Literal["auto", "explicit"] = Field(description="auto: sized from the lens")
    energy_kept_min: float = Field(ge=0, le=1, description="least fraction of a probed PSF inside the kernel")
    energy_kept_mean: float = Field(ge=0, le=1)
    energy_dropped_max: float = Field(ge=0, le=1, description="1 - energy_kept_min: what the kernel clips at worst")
    worst_condition: str = Field(description="the probed condition that keeps the least")
    allow_clipping: bool = Field(description="an explicit kernel clipping past 1 - MIN_ENERGY_KEPT was accepted")
    spp: int = Field(description="rays per training PSF")
    reference_window: int = Field(description="window [px] the evaluation reference was traced on")
    expected_noise: dict[str, float] = Field(default_factory=dict,
                                             description="expected relative-L1 ray noise of training, validation "
                                             "and reference traces at the widest PSF")


class TrainingSummary(_Strict):
    steps: int
    ray_traced_samples: int
    spp: int
    wall_time_s: float
    config: dict[str, Any]
    processes: int = Field(default=1, ge=1, description="training processes (the data-parallel world size)")


# The served kernel's contract (training's config and sizing read these too).
KERNEL_SIZE_MIN, KERNEL_SIZE_MAX = 8, 256  # [px], k of the k x k kernels
MIN_ENERGY_KEPT = 0.995  # at least this much of every PSF inside the served kernel (data.kernel_size: auto)


class Manifest(_Strict):
    schema_version: int = SCHEMA_VERSION
    name: str
    version: int = Field(ge=1)
    created: datetime
    lens: LensInfo
    conditions: list[ConditionSpec]
    kernel_size: int = Field(ge=KERNEL_SIZE_MIN, le=KERNEL_SIZE_MAX)
    sizing: KernelSizing | None = Field(default=None, description="how kernel_size was chosen from the lens")
    latent_size: int = Field(ge=1)
    symmetry: Literal["rotational", "mirror", "none"] = Field(
        default="rotational",
        description="rotational: the graphs are conditioned on the +y meridian and other azimuths are "
        "served by rotating the kernel; mirror: the graphs take azimuth in [0, 90] deg and the other "
        "quadrants are served by exact mirror flips; none: no symmetry used",
    )
    orientation: str = Field(
        default="row 0 is image +y (top), column 0 is image -x (left); centred on the chief ray",
        description="how PSF array axes map to the image plane",
    )
    graphs: dict[str, GraphSpec]
    files: dict[str, str] = Field(description="file name -> sha256 of every file of this version")
    training: TrainingSummary
    evaluation: dict[str, Any] = Field(default_factory=dict, description="errors vs ray tracing")
    geometry: GeometryTable | None = Field(
        default=None, description="chief-ray image position and relative illumination per condition, as a "
        "table (models_store.geometry interpolates it); None in versions published before it existed")

    @field_validator("graphs")
    @classmethod
    def _all_graphs(cls, graphs: dict[str, GraphSpec]) -> dict[str, GraphSpec]:
        missing = [role for role in GRAPH_ROLES if role not in graphs]
        if missing:
            raise ValueError(f"graphs is missing {missing}; every version ships {list(GRAPH_ROLES)}")
        return graphs

    @model_validator(mode="after")
    def _graph_files_hashed(self) -> Manifest:
        for role, graph in self.graphs.items():
            if graph.file not in self.files:
                raise ValueError(f"graph {role!r} file {graph.file!r} has no sha256 entry in files")
        return self

    @property
    def condition_names(self) -> list[str]:
        return [c.name for c in self.conditions]

    def condition(self, name: str) -> ConditionSpec:
        for spec in self.conditions:
            if spec.name == name:
                return spec
        raise KeyError(name)
