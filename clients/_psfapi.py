"""The PSF server's own API as a backend: each method one request of ``_http`` (a batch over the
server's limit several, see ``_batch``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from models_store.wire import DType

from . import _http as routes
from ._api import ImageGeometry, Latent, Query, Version
from ._arrays import PSFArray
from ._batch import BatchPlan
from ._exceptions import PayloadTooLargeError, PSFError
from ._plan import Plan

if TYPE_CHECKING:
    from ._base import HTTPSource


class PSFApi:
    """Plans of the PSF API; ``source`` holds the batch limit learned from the server's answers."""

    def __init__(self, source: HTTPSource) -> None:
        self.source = source

    def psf(self, q: Query, dtype: DType) -> Plan[PSFArray]:
        return (yield routes.psf_call(q, dtype))

    def psf_batch(self, q: Query, dtype: DType) -> Plan[PSFArray]:
        plan = BatchPlan(q, dtype, self.source.max_batch)
        # the first chunk alone: it learns the limit (413) and pins the version for the others, which
        # then go out together (one after another when blocking, concurrently in the event loop)
        while not plan.parts and (chunk := plan.next_chunk()) is not None:
            start, call = chunk
            try:
                plan.done(start, (yield call))
            except PayloadTooLargeError as error:
                self.source.max_batch = plan.too_large(start, error)
        rest = []
        while (chunk := plan.next_chunk()) is not None:
            rest.append(chunk)
        if rest:
            answers = yield [call for _, call in rest]
            for (start, _), answer in zip(rest, answers, strict=True):
                plan.done(start, answer)
        return plan.result()

    def psf_grid(self, nx: int, ny: int, physical: dict[str, Any], model: str | None, version: Version,
                 dtype: DType) -> Plan[PSFArray]:
        return (yield routes.grid_call(nx, ny, physical, model, version, dtype))

    def interpolate(self, start: Mapping[str, Any], end: Mapping[str, Any], steps: int, method: str,
                    model: str | None, version: Version) -> Plan[PSFArray]:
        return (yield routes.interpolate_call(start, end, steps, method, model, version))

    def latent(self, q: Query) -> Plan[Latent]:
        return (yield routes.latent_call(q))

    def decode(self, z: Any, q: Query) -> Plan[PSFArray]:
        return (yield routes.decode_call(z, q))

    def geometry(self, q: Query) -> Plan[ImageGeometry]:
        return (yield routes.geometry_call(q))

    def distortion(self, nx: int, ny: int, physical: dict[str, Any], model: str | None,
                   version: Version) -> Plan[ImageGeometry]:
        return (yield routes.distortion_call(nx, ny, physical, model, version))

    def models(self) -> Plan[list[dict[str, Any]]]:
        return (yield routes.models_call())

    def model(self, name: str, version: Version) -> Plan[dict[str, Any]]:
        return (yield routes.model_call(name, version))

    def probe(self, which: str) -> Plan[bool]:
        """``health`` (/healthz) or ``ready`` (/readyz): answered now (no retries), False on any error."""
        try:
            return (yield routes.probe_call(which))
        except PSFError:
            return False
