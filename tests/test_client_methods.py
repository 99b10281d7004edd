"""The client's method table: the blocking and async tables offer the same methods with the same
parameters, and every backend answers every method of the Backend interface with its parameters."""

from __future__ import annotations

import inspect

import pytest

from clients import PSFError
from clients._local import _LocalBackend
from clients._methods import AsyncPSFSource, Backend, PSFSource
from clients._plan import no_requests, now, run_blocking
from clients._psfapi import PSFApi
from clients._v2 import V2


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(fn) for name, fn in vars(cls).items()
            if not name.startswith("_") and inspect.isfunction(fn)}


def test_the_async_table_has_the_blocking_tables_methods_and_parameters() -> None:
    blocking, asynchronous = _public_methods(PSFSource), _public_methods(AsyncPSFSource)
    assert blocking.keys() == asynchronous.keys()
    for name, signature in blocking.items():
        assert asynchronous[name].parameters == signature.parameters, name
        assert inspect.iscoroutinefunction(getattr(AsyncPSFSource, name)), name
        assert getattr(AsyncPSFSource, name).__doc__ == getattr(PSFSource, name).__doc__, name


@pytest.mark.parametrize("backend", [PSFApi, V2, _LocalBackend])
def test_every_backend_answers_every_method_with_its_parameters(backend: type) -> None:
    interface = {name: inspect.signature(fn) for name, fn in vars(Backend).items()
                 if not name.startswith("_") and inspect.isfunction(fn)}
    assert interface, "the Backend interface lists no methods"
    for name, signature in interface.items():
        assert hasattr(backend, name), f"{backend.__name__} lacks {name}"
        assert list(inspect.signature(getattr(backend, name)).parameters) == list(signature.parameters), name


def test_a_plan_gets_its_answers_and_can_answer_an_error() -> None:
    def plan():
        first = yield "a"
        try:
            yield "fail"
        except PSFError as error:
            return first, str(error)

    def send(call: str) -> str:
        if call == "fail":
            raise PSFError("refused")
        return call.upper()

    assert run_blocking(plan(), send) == ("A", "refused")
    assert run_blocking(now(3), no_requests) == 3
    with pytest.raises(PSFError, match="in-process source cannot send"):
        run_blocking(PSFApi(None).models(), no_requests)  # type: ignore[arg-type]
