"""Probabilistic models, selected by ``model.type``."""

from . import cvae  # noqa: F401
