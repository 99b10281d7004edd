"""Run configuration: YAML (OmegaConf: interpolation, key=value overrides) checked by a pydantic schema.

Defaults live here, once. An unknown key or a value of the wrong type stops the run before any ray
is traced, with a message naming the key (dotted path) and what is allowed. Checking a config never
imports torch: registered names and their own keys come from torch-free declarations (training/registry.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ConfigDict, Field, FilePath, ValidationError, field_validator, model_validator

from models_store.manifest import KERNEL_SIZE_MAX, KERNEL_SIZE_MIN, MIN_ENERGY_KEPT

from .loss_spec import parse_loss
from .prescription import check_lens_file, require_pixel_grid
from .registry import DATASETS, MODELS, NETWORKS, Registry, UnknownNameError


class ConfigError(ValueError):
    """The config file or an override is not valid; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Range(_Section):
    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.min < self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        return self


class LensConfig(_Section):
    file: FilePath = Field(description="lens prescription: DeepLens JSON or Zemax .zmx (any letter case), relative to "
                           "the working folder; training.lens_formats lists the readers")
    focus_m: float | None = Field(default=None, gt=0, description="fixed focus distance [m]; None = infinity")
    sensor_res: tuple[int, int] | None = Field(
        default=None, description="sensor pixels (width, height); keeps the file's sensor diagonal. Required for "
        "Zemax files, which carry no pixel grid; overrides a JSON file's sensor_res")
    sensor_diagonal_mm: float | None = Field(
        default=None, gt=0, description="sensor diagonal [mm]; replaces the file's (needed for a Zemax file whose "
        "fields are all on the axis, which carries no sensor size)")
    glasses: dict[str, str] = Field(
        default_factory=dict, description="glass substitutions, file name -> DeepLens catalogue name or 'nd/vd', "
        "for a glass DeepLens does not know and the file stores no data for")
    allow_mismatch: bool = Field(
        default=False, description="expert override: use a lens whose traced focal length or f-number differs from "
        "the file's own by more than 5 % (the manifest's lens notes record it)")

    @field_validator("file")
    @classmethod
    def _traceable(cls, path: Path) -> Path:
        check_lens_file(path)
        return path

    @model_validator(mode="after")
    def _pixel_grid(self) -> LensConfig:
        if self.sensor_res is not None and min(self.sensor_res) < 16:
            raise ValueError(f"sensor_res {list(self.sensor_res)}: need at least 16 pixels a side")
        require_pixel_grid(self.file, self.sensor_res)
        return self


class ConditionsConfig(_Section):
    field: Range = Range(min=0.0, max=1.0)
    depth: Range = Field(default=Range(min=2.0, max=100.0), description="object distance [m]")
    wavelength: Range = Field(default=Range(min=450.0, max=650.0), description="[nm]")
    focus: Range | None = Field(default=None, description="focus distance range [m]: makes focus a condition")
    azimuth: Range | None = Field(
        default=None, description="azimuth range [deg] within [0, 90]: makes azimuth a condition; the other "
        "quadrants are served by exact mirror flips. None: train on the +y meridian and rotate kernels")

    @model_validator(mode="after")
    def _physical(self) -> ConditionsConfig:
        if self.field.min < 0 or self.field.max > 1:
            raise ValueError("field must lie within [0, 1] (fraction of the sensor half-diagonal)")
        if self.depth.min <= 0:
            raise ValueError("depth.min must be positive (metres in front of the lens)")
        if self.focus is not None and self.focus.min <= 0:
            raise ValueError("focus.min must be positive (metres)")
        if self.azimuth is not None and (self.azimuth.min < 0 or self.azimuth.max > 90):
            raise ValueError("azimuth must lie within [0, 90] deg (other quadrants are mirror images)")
        if self.wavelength.min < 300 or self.wavelength.max > 1100:
            raise ValueError("wavelength must lie within [300, 1100] nm")
        return self

    def names(self) -> list[str]:
        return [name for name, _, _ in self.columns()]

    def columns(self) -> list[tuple[str, float, float]]:
        """(name, min, max) in condition-vector order, the order of every graph's input."""
        cols = [("field", self.field), ("depth", self.depth), ("wavelength", self.wavelength)]
        if self.focus is not None:
            cols.append(("focus", self.focus))
        if self.azimuth is not None:
            cols.append(("azimuth", self.azimuth))
        return [(name, r.min, r.max) for name, r in cols]


class SamplingConfig(_Section):
    field_power: float = Field(default=0.5, gt=0, le=1, description="field = u**p; 0.5 = uniform over area")
    near_focus_fraction: float = Field(default=0.2, ge=0, le=1, description="share of depths drawn near focus")
    near_focus_width: float = Field(default=0.08, gt=0, description="band width, fraction of the 1/depth range")
    azimuth: Literal["uniform", "meridian"] = Field(
        default="uniform", description="training azimuths: uniform over conditions.azimuth, or all on the +y "
        "meridian (90 deg) for a steered model (model.steer), whose decoder turns the PSF itself; meridian "
        "PSFs are then averaged with their mirror image, which halves their ray noise")


# Ray noise levels `auto` ray counts keep for held-out references (expected relative L1 of one trace
# against the truth, at the widest probe point): what the Cooke triplet's configs had at 65536
# (validation) and 2^21 (evaluation) rays, so a lens with bigger PSFs gets proportionally more rays.
VALIDATION_RAY_NOISE = 0.0467
REFERENCE_RAY_NOISE = 0.0082
# Rays per *training* PSF that `data.spp: auto` traces, whatever the lens. The likelihood loss (CE) is
# unbiased at any ray count, so rays buy more where they sample new conditions than where they smooth
# one sample: below about this count DeepLens's fixed cost per PSF dominates its time, above it the
# time grows with the rays (80 px: 150-200 PSFs/s at 1024-4096 rays, 80 at 16,384; README, Time to accuracy).
AUTO_TRAINING_SPP = 2048


class DataConfig(_Section):
    type: str = Field(default="online", description="online (trace on first use) | bank (trace once, reuse) | "
                      "another entry of training/datasets/args.py")
    kernel_size: Annotated[int, Field(ge=KERNEL_SIZE_MIN, le=KERNEL_SIZE_MAX)] | Literal["auto"] = Field(
        default="auto", description=f"PSF kernel [px]; auto: the smallest that holds >= {MIN_ENERGY_KEPT:.1%} of the "
        "energy at every probed condition, with a margin (python -m training.lens inspect shows the probe)")
    allow_clipping: bool = Field(default=False, description="accept an explicit kernel_size that drops more than "
                                 f"{1 - MIN_ENERGY_KEPT:.1%} of some PSF's energy; the loss goes in the manifest")
    spp: Annotated[int, Field(ge=64)] | Literal["auto"] = Field(
        default="auto", description=f"rays per training PSF; auto: {AUTO_TRAINING_SPP} (or enough for ray_noise, "
        "when set)")
    ray_noise: float | None = Field(default=None, gt=0, lt=1,
                                    description="if set, spp: auto traces enough rays for this relative-L1 ray noise "
                                    "per training PSF (the rule before the likelihood loss; costs grow with the PSF)")
    rounds: int = Field(default=1, ge=1, description="fresh conditions: the steps are split into this many rounds, "
                        "each on its own newly drawn and traced train_samples conditions (memory stays one round's)")
    trace_device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="where DeepLens traces: auto = cuda when a GPU is present, else cpu")
    optics: Literal["geometric", "diffraction", "auto"] = Field(
        default="auto", description="PSF physics: geometric (ray tracing), diffraction (ray tracing convolved with the "
        "Airy pattern of the working f-number at each wavelength, integrated over the pixel) or auto: diffraction "
        "when the Airy radius 1.22 lambda N at the longest trained wavelength exceeds half a pixel "
        "(training/diffraction.py)")
    probe_spp: int = Field(default=16384, ge=1024, description="rays per point of the lens probe that sizes "
                           "kernel_size and spp")
    train_samples: int = Field(default=4096, ge=16)
    block: int = Field(default=32, ge=1, description="samples traced together; they share one wavelength")
    sampling: SamplingConfig = SamplingConfig()
    cache_dir: Path = Field(default=Path(".cache/banks"), description="where PSF banks are kept")

    @field_validator("type")
    @classmethod
    def _dataset_resolves(cls, name: str) -> str:
        try:
            DATASETS.entry(name)
        except UnknownNameError as exc:
            raise ValueError(str(exc)) from None
        return name

    @model_validator(mode="after")
    def _rounds_need_fresh_tracing(self) -> DataConfig:
        if self.rounds > 1 and self.type == "bank":
            raise ValueError(f"rounds = {self.rounds} draws fresh conditions every round, which a bank (traced once, "
                             "reused) cannot: use type: online, or rounds: 1")
        return self


class _TypedSection(BaseModel):
    """A section whose ``type`` names a registry entry; its other keys are checked against that entry's schema."""

    model_config = ConfigDict(extra="allow")
    type: str

    @classmethod
    def _registry(cls) -> Registry:
        raise NotImplementedError

    @field_validator("type")
    @classmethod
    def _resolves(cls, name: str) -> str:
        try:
            cls._registry().entry(name)
        except UnknownNameError as exc:
            raise ValueError(str(exc)) from None
        return name

    @model_validator(mode="after")
    def _own_keys(self) -> _TypedSection:
        self._registry().parse_args(self.type, self.options())
        return self

    def options(self) -> dict[str, Any]:
        """The entry's own keys as written in the config (defaults not filled in)."""
        return dict(self.model_extra or {})

    def args(self) -> BaseModel | None:
        """The entry's own keys, checked, defaults filled in (its schema's instance)."""
        return self._registry().parse_args(self.type, self.options())


class ModelConfig(_TypedSection):
    """``type`` picks the model (training/models/args.py); its other keys, e.g. ``latent_size``, are that model's."""

    type: str = "cvae"

    @classmethod
    def _registry(cls) -> Registry:
        return MODELS


class NetworkConfig(_TypedSection):
    """``type`` picks the decoder network (training/networks/args.py); its other keys are that network's."""

    type: str = "mlp_basis"

    @classmethod
    def _registry(cls) -> Registry:
        return NETWORKS


class LossConfig(_Section):
    recon: str = Field(default="1*CE", description="reconstruction loss spec: CE (the rays' likelihood, unbiased at "
                       "any ray count), L1, MSE, or a weighted sum such as 1*CE+1e3*MSE")
    prior_recon_weight: float = Field(default=1.0, ge=0, description="recon. through the prior mean (the served path)")
    kl_weight: float = Field(default=1e-3, ge=0, description="beta of the KL(q || p(z|c)) term")
    free_bits: float = Field(default=0.0, ge=0, description="KL per latent dimension below this is not penalised")
    interp_weight: float = Field(default=0.1, ge=0, description="latent-interpolation consistency")
    interp_span: float = Field(default=0.25, gt=0, le=1, description="pair distance, fraction of each range")

    @field_validator("recon")
    @classmethod
    def _parse(cls, spec: str) -> str:
        parse_loss(spec)
        return spec


class OptimConfig(_Section):
    lr: float = Field(default=2e-3, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(default=1e-8, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    grad_clip: float | None = Field(default=1.0, gt=0)


class ScheduleConfig(_Section):
    type: Literal["cosine", "cosine_restarts", "constant"] = "cosine"
    warmup_steps: int = Field(default=100, ge=0)
    cycles: int = Field(default=1, ge=1, description="restarts for cosine_restarts")
    min_lr_ratio: float = Field(default=0.05, ge=0, le=1)


class TrainConfig(_Section):
    steps: int = Field(default=3000, ge=1)
    batch_size: int = Field(default=128, ge=2, description="per process, per accumulation step")
    grad_accum: int = Field(default=1, ge=1)
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    log_every: int = Field(default=100, ge=1)
    threads: int | None = Field(default=None, ge=1, description="torch CPU threads (None = torch default)")


class CheckpointConfig(_Section):
    every: int = Field(default=1000, ge=1, description="steps between checkpoints (and one at the end)")
    total_limit: int | None = Field(default=3, ge=1, description="oldest checkpoints beyond this are deleted")


class ValidationConfig(_Section):
    every: int = Field(default=1000, ge=1, description="steps between validations (and one at the end)")
    samples: int = Field(default=64, ge=4, description="held-out conditions")
    spp: Annotated[int, Field(ge=64)] | Literal["auto"] = Field(
        default="auto", description="rays per held-out reference PSF; auto: enough for ray_noise")
    ray_noise: float = Field(default=VALIDATION_RAY_NOISE, gt=0, lt=1)


class TrackingConfig(_Section):
    report_to: list[str] = Field(default_factory=lambda: ["tensorboard"],
                                 description="accelerate trackers: tensorboard, wandb, comet_ml, ... or []")


class EvaluationConfig(_Section):
    grid: tuple[int, int, int] = Field(default=(4, 4, 3), description="held-out points: field x depth x wavelength")
    rays: Annotated[int, Field(ge=1024)] | Literal["auto"] = Field(
        default="auto", description="rays per converged reference point; auto: enough for ray_noise, at most max_rays")
    ray_noise: float = Field(default=REFERENCE_RAY_NOISE, gt=0, lt=1)
    max_rays: int = Field(default=2**25, ge=1024, description="cap on auto rays per reference point (time)")
    window: Annotated[int, Field(ge=8, le=1024)] | Literal["auto"] = Field(
        default="auto", description="reference window [px]; auto: holds 99.99 % of every probed PSF, so the error "
                                    "sees energy outside the kernel")
    adaptive: bool = Field(default=True, description="trace each point until its own noise is ray_noise (at most "
                           "rays): sharp PSFs take few rays, wide ones many; false: rays at every point")
    repeats: int = Field(default=4, ge=1, description="independent traces averaged per reference point "
                         "(adaptive: false)")
    spp_levels: list[int] = Field(default_factory=lambda: [2048, 8192, 32768], description="ray-trace noise floor")
    interp_pairs: int = Field(default=8, ge=0, description="latent-midpoint checks")
    cache_dir: Path = Path(".cache/references")


class ExportConfig(_Section):
    opset: int = Field(default=17, ge=13)
    parity_samples: int = Field(default=64, ge=1)
    parity_rel_l1: float = Field(
        default=0.01, gt=0, le=1, description="largest relative L1 between onnxruntime's and torch's PSFs, as a "
        "fraction of the model's own whole-PSF error (so a healthy fit is never refused for float32 rounding)")
    parity_tol: float = Field(default=1e-4, gt=0, description="max |onnx - torch| of the latent outputs (mu, logvar), "
                              "relative to their scale")


class RunConfig(_Section):
    name: str = Field(description="model name in the store")
    seed: int = 0
    lens: LensConfig
    conditions: ConditionsConfig = ConditionsConfig()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    network: NetworkConfig = NetworkConfig()
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    train: TrainConfig = TrainConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    validation: ValidationConfig = ValidationConfig()
    tracking: TrackingConfig = TrackingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    export: ExportConfig = ExportConfig()
    resume: str | None = Field(default=None, description="latest | a run folder | a checkpoint folder")
    run_dir: Path = Field(default=Path("runs"), description="runs are written to RUN_DIR/NAME-TIMESTAMP")
    publish: bool = True


# pydantic names the member of a union (`int | "auto"`) in an error's location; the user's key has none
_UNION_MEMBER = re.compile(r"^(constrained-\w+|literal\[.*\]|int|float|str|bool|none)$")


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"invalid config {source}:"]
    unions: dict[str, tuple[list[str], Any]] = {}
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and _UNION_MEMBER.match(p)))
        key = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key{_allowed_hint(loc)}")
        elif err["type"] == "missing":
            lines.append(f"  {key}: required key is missing")
        elif loc != tuple(err["loc"]):  # one alternative of a union: say them all on one line
            unions.setdefault(key, ([], err.get("input")))[0].append(err["msg"].removeprefix("Input should be "))
        else:
            got = "" if isinstance(err.get("input"), dict) else f" (got {err.get('input')!r})"
            lines.append(f"  {key}: {err['msg'].removeprefix('Value error, ')}{got}")
    for key, (options, value) in unions.items():
        lines.append(f"  {key}: should be {' or '.join(options)} (got {value!r})")
    return "\n".join(lines)


def _allowed_hint(loc: tuple[Any, ...]) -> str:
    model: type[BaseModel] = RunConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    return f" (allowed here: {', '.join(model.model_fields)})"


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """YAML file + ``key=value`` overrides -> validated :class:`RunConfig`."""
    source = str(path) if path else "(overrides only)"
    try:
        base = OmegaConf.load(path) if path else OmegaConf.create({})
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise ConfigError(f"override {bad[0]!r} is not key=value (e.g. train.steps=500)")
        merged = OmegaConf.merge(base, OmegaConf.from_dotlist(list(overrides)))
        data = OmegaConf.to_container(merged, resolve=True)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except OmegaConfBaseException as exc:
        raise ConfigError(f"config {source}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config {source} must be a mapping of keys, got {type(data).__name__}")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None
