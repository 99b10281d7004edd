"""The FastAPI application: ``create_app(settings)`` wires settings, the registry and the routers.

Run it with ``python -m serving`` or ``uvicorn --factory serving.app:create_app``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from models_store import Store

from .deps import require_api_key
from .errors import install_error_handlers
from .registry import Registry
from .routes import health, models, psf
from .settings import Settings, get_settings

DESCRIPTION = """PSFs of a lens from a trained surrogate model, in physical units.

Positions: `field` (fraction of the sensor half-diagonal) with `azimuth` (degrees, 0 = +x,
counter-clockwise, default 90), or `x`, `y` (fractions of the sensor half-width / half-height).
`depth` in metres, `wavelength` in nanometres, `focus` in metres. Each model accepts only the ranges
it was trained on (`GET /models/{name}`); anything else is refused with 422 naming the parameter,
the value and the allowed range.
"""


def _settings_of(app: FastAPI) -> Settings:
    # the same object the routes see, including a test's dependency override
    return app.dependency_overrides.get(get_settings, get_settings)()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = _settings_of(app)
    registry = Registry(Store(settings.store), default_model=settings.default_model,
                        prefer_gpu=settings.prefer_gpu, threads=settings.threads)
    # loaded before the port opens: small models load in well under a second, and every later
    # request then finds its model ready
    registry.load_all()
    app.state.registry = registry
    yield


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(title="PSF surrogate", description=DESCRIPTION, lifespan=_lifespan)
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    install_error_handlers(app)
    app.include_router(health.router)
    protected = [Depends(require_api_key)]
    app.include_router(psf.router, dependencies=protected)
    app.include_router(models.router, dependencies=protected)
    return app
