"""python -m serving.healthcheck: exit 0 when this machine's server answers GET /healthz, else 1.

For container HEALTHCHECKs: the standard library only (no curl in the image). The port comes from
PSF_PORT like the server's own; a server listening on every interface is asked on loopback.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

_ANY = {"", "0.0.0.0", "::"}


def main() -> int:
    host = os.environ.get("PSF_HOST", "127.0.0.1")
    host = "127.0.0.1" if host in _ANY else host
    url = f"http://{host}:{os.environ.get('PSF_PORT', '8000')}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=float(os.environ.get("PSF_HEALTHCHECK_TIMEOUT_S", "3"))) as answer:
            ok = answer.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
