"""The ``model.*`` keys of every model, and where each lives (torch-free: config validation reads it).

A model class builds itself: ``Model.from_config(cfg)`` for a new run, ``Model.from_record(record)``
from the ``model_args.json`` its ``record()`` wrote (run folders and checkpoints).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..registry import MODELS


@MODELS.register("cvae", impl="training.models.cvae:CVAE")
class CVAEConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    latent_size: int = Field(default=8, ge=1)
    hidden: int = Field(default=128, ge=8, description="width of the encoder and prior MLPs")
    steer: bool = Field(default=False, description="the decoder predicts the PSF in its meridian frame (azimuth "
                        "not an input of its network) and turns the log-PSF to the azimuth inside the graph; "
                        "needs conditions.azimuth (training/steering.py)")
    supersample: int | None = Field(default=None, ge=1, le=4, description="steered decoders: predict on a grid this "
                                    "many times finer and integrate each pixel; default 2 up to 64 px kernels, else 1")
