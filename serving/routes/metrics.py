"""GET /metrics: Prometheus text format (requests, latencies, batch sizes, queue depth, versions)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ..deps import ServerDep

router = APIRouter(tags=["health"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(server: ServerDep) -> Response:
    body, content_type = server.metrics.render()
    return Response(body, media_type=content_type)
