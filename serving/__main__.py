"""python -m serving [--store DIR] [--host H] [--port P] [--log-level LEVEL]

Anything not given on the command line comes from PSF_* environment variables (see
serving/settings.py), the store from --store, else PSF_STORE, else the shared default.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import get_args

import uvicorn
from pydantic import ValidationError

from .app import create_app
from .settings import LogLevel, Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving",
                                     description="Answer PSF queries over HTTP from the models in a store.")
    parser.add_argument("--store", help="model store folder (default: $PSF_STORE or the shared default)")
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default 8000)")
    parser.add_argument("--log-level", choices=get_args(LogLevel))
    args = parser.parse_args(argv)
    # only what was given overrides the environment
    try:
        settings = Settings(**{k: v for k, v in vars(args).items() if v is not None})
    except ValidationError as exc:  # a bad PSF_* variable or flag: say which, without a traceback
        parser.error(str(exc))
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
