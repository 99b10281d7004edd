"""Run configuration: YAML (OmegaConf: interpolation, key=value overrides) checked by a pydantic schema.

Defaults live here, once. An unknown key or a value of the wrong type stops the run before any ray
is traced, with a message naming the key (dotted path) and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ConfigDict, Field, FilePath, ValidationError, model_validator


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
    file: FilePath = Field(description="DeepLens JSON or Zemax .zmx prescription (relative to the working folder)")
    focus_m: float | None = Field(default=None, gt=0, description="fixed focus distance [m]; None = infinity")


class ConditionsConfig(_Section):
    field: Range = Range(min=0.0, max=1.0)
    depth: Range = Field(default=Range(min=2.0, max=100.0), description="object distance [m]")
    wavelength: Range = Field(default=Range(min=450.0, max=650.0), description="[nm]")

    @model_validator(mode="after")
    def _physical(self) -> ConditionsConfig:
        if self.field.min < 0 or self.field.max > 1:
            raise ValueError("field must lie within [0, 1] (fraction of the sensor half-diagonal)")
        if self.depth.min <= 0:
            raise ValueError("depth.min must be positive (metres in front of the lens)")
        if self.wavelength.min < 300 or self.wavelength.max > 1100:
            raise ValueError("wavelength must lie within [300, 1100] nm")
        return self


class DataConfig(_Section):
    kernel_size: int = Field(default=32, ge=8, le=256)
    spp: int = Field(default=8192, ge=64, description="rays per training PSF")
    train_samples: int = Field(default=4096, ge=16)
    block: int = Field(default=32, ge=1, description="samples traced together; they share one wavelength")
    val_samples: int = Field(default=64, ge=4, description="held-out conditions for the metrics")
    val_spp: int = Field(default=65536, ge=64, description="rays per held-out reference PSF")


class ModelConfig(_Section):
    latent_size: int = Field(default=8, ge=1)
    hidden: int = Field(default=256, ge=8)
    depth: int = Field(default=3, ge=1, description="hidden layers of each MLP")


class TrainConfig(_Section):
    steps: int = Field(default=3000, ge=1)
    batch_size: int = Field(default=128, ge=2)
    lr: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    warmup_steps: int = Field(default=100, ge=0)
    beta_kl: float = Field(default=1e-3, ge=0)
    prior_recon_weight: float = Field(default=1.0, ge=0, description="recon. through the prior mean (the served path)")
    interp_weight: float = Field(default=0.1, ge=0, description="latent-interpolation consistency")
    interp_span: float = Field(default=0.25, gt=0, le=1, description="pair distance, fraction of each range")
    grad_clip: float | None = Field(default=1.0, gt=0)
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    checkpoint_every: int = Field(default=1000, ge=1)
    log_every: int = Field(default=100, ge=1)
    threads: int | None = Field(default=None, ge=1, description="torch CPU threads (None = torch default)")


class ExportConfig(_Section):
    opset: int = Field(default=17, ge=13)
    parity_samples: int = Field(default=64, ge=1)
    parity_tol: float = Field(default=1e-5, gt=0, description="max |onnx - torch| as a fraction of the PSF peak")


class RunConfig(_Section):
    name: str = Field(description="model name in the store")
    seed: int = 0
    lens: LensConfig
    conditions: ConditionsConfig = ConditionsConfig()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    export: ExportConfig = ExportConfig()
    run_dir: Path = Field(default=Path("runs"), description="runs are written to RUN_DIR/NAME-TIMESTAMP")
    publish: bool = True


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"invalid config {source}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key{_allowed_hint(err['loc'])}")
        elif err["type"] == "missing":
            lines.append(f"  {key}: required key is missing")
        else:
            lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
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
