"""How many HTTP requests are being answered: what the micro-batcher waits on, counted apart from metrics.

The batcher keeps a lone query waiting for company only while other requests are on their way to it
(serving/batcher.py). It reads this count, which the request meter (``metrics.RequestMeter``, used by
the metrics middleware and the GET /psf fast path alike) moves, rather than a metrics series, so
scheduling never depends on what is measured.
"""

from __future__ import annotations


class RequestsInFlight:
    """A plain counter (the event loop is the only writer, so no lock)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0
