"""python -m serving [--store DIR] [--host H] [--port P] [--workers N] [--log-level LEVEL]

Anything not given on the command line comes from PSF_* environment variables (see
serving/settings.py and README.md), the store from --store, else PSF_STORE, else the shared default.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from functools import partial
from typing import Any, get_args

import uvicorn
from pydantic import ValidationError

from .app import create_app
from .metrics import MULTIPROC_ENV
from .protocol import BoundedHttpToolsProtocol
from .settings import LogLevel, Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving",
                                     description="Answer PSF queries over HTTP from the models in a store.")
    parser.add_argument("--store", help="model store folder (default: $PSF_STORE or the shared default)")
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default 8000)")
    parser.add_argument("--workers", type=int, help="worker processes (default 1)")
    parser.add_argument("--log-level", choices=get_args(LogLevel))
    args = parser.parse_args(argv)
    given = {k: v for k, v in vars(args).items() if v is not None}
    # only what was given overrides the environment
    try:
        settings = Settings(**given)
    except ValidationError as exc:  # a bad PSF_* variable or flag: say which, without a traceback
        parser.error(str(exc))
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options: dict[str, Any] = {"host": settings.host, "port": settings.port, "log_level": settings.log_level,
                               "access_log": False,  # the app writes its own, off the event loop
                               "loop": settings.loop,
                               "http": partial(BoundedHttpToolsProtocol, max_head_bytes=settings.max_header_bytes),
                               "timeout_graceful_shutdown": settings.graceful_timeout_s}
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **options)
        return 0
    # Workers are fresh processes that build their app from the environment: hand the flags on there.
    for key, value in given.items():
        os.environ[f"PSF_{key.upper()}"] = str(value)
    metrics_dir = None
    if not os.environ.get(MULTIPROC_ENV):  # /metrics then adds up every worker's series
        metrics_dir = os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="psf-metrics-")
    try:
        uvicorn.run("serving.app:create_app", factory=True, workers=settings.workers, **options)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
