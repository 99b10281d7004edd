"""Hot reload: look at the store every few seconds and switch to new versions and moved aliases.

The look is a listing of a few small directories and ref files; loading (sha256 of every file, then
onnxruntime sessions) happens in a worker thread before the switch, so requests never wait for it and
requests already running finish on the version they started with.
"""

from __future__ import annotations

import asyncio
import logging

from .versions import Registry

log = logging.getLogger(__name__)


async def poll_store(registry: Registry, interval_s: float) -> None:
    """Runs until cancelled; one failed look is logged and the next one tried."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await asyncio.to_thread(registry.refresh)
        except Exception:  # a store on a flaky volume must not end reloading for good
            log.exception("looking at the store %s failed; trying again in %.1f s", registry.store.root, interval_s)


def start_polling(registry: Registry, interval_s: float) -> asyncio.Task[None] | None:
    if interval_s <= 0:
        return None
    return asyncio.get_running_loop().create_task(poll_store(registry, interval_s), name="store poller")
