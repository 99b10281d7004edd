"""GET /metrics: Prometheus text format (requests, latencies, batch sizes, queue depth, versions)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ..deps import MetricsDep

router = APIRouter(tags=["health"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(metrics: MetricsDep) -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
