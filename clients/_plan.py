"""Plans: what a client method does, written once, without I/O; the shells decide how to send.

Every backend (``_psfapi``, ``_v2``, ``_local``) answers a method with a *plan*: a generator that
yields the requests it needs (one :class:`~clients._http.Call`, or a list of calls that may go out
together) and receives their answers, then returns the result. An error answer is thrown into the
plan at the ``yield``, so a plan can react to it (a 413 splits a batch, a failed probe is ``False``).
The blocking shell sends with httpx.Client (a list one call after another), the async shell with
httpx.AsyncClient (a list concurrently); the in-process source's plans never yield. This is the
sans-I/O split httpx itself uses between its request building and its sync / async clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from typing import Any, cast

from ._exceptions import PSFError
from ._http import Call

type Request = Call | list[Call]
type Plan[T] = Generator[Request, Any, T]


def now[T](value: T) -> Plan[T]:
    """A plan that needs no request: the value itself (in-process sources, answers already known)."""
    return value
    yield  # a generator without I/O


class _Driver[T]:
    """Where a plan stands: the request it waits on, or (``done``) its result."""

    def __init__(self, plan: Plan[T]) -> None:
        self.plan, self.done, self.request = plan, False, cast(Request, None)
        self._resume(lambda: next(plan))

    def _resume(self, step: Callable[[], Request]) -> None:
        try:
            self.request = step()
        except StopIteration as stop:
            self.done, self.result = True, cast(T, stop.value)

    def answer(self, value: Any) -> None:
        self._resume(lambda: self.plan.send(value))

    def fail(self, error: PSFError) -> None:
        self._resume(lambda: self.plan.throw(error))


def run_blocking[T](plan: Plan[T], send: Callable[[Call], Any]) -> T:
    """Drive ``plan`` to its result, sending each request with ``send`` (a list one call at a time)."""
    driver = _Driver(plan)
    while not driver.done:
        request = driver.request
        try:
            answer = [send(call) for call in request] if isinstance(request, list) else send(request)
        except PSFError as error:
            driver.fail(error)
        else:
            driver.answer(answer)
    return driver.result


async def run_async[T](plan: Plan[T], send: Callable[[Call], Awaitable[Any]]) -> T:
    """Drive ``plan`` to its result in the event loop; the calls of a list go out concurrently."""
    driver = _Driver(plan)
    while not driver.done:
        request = driver.request
        try:
            answer = await (asyncio.gather(*map(send, request)) if isinstance(request, list) else send(request))
        except PSFError as error:
            driver.fail(error)
        else:
            driver.answer(answer)
    return driver.result


def no_requests(call: Call) -> Any:
    """The sender of a source that answers in-process: a plan that asks for a request is a bug."""
    raise PSFError(f"an in-process source cannot send {call.method} {call.path}")
