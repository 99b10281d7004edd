"""Retries against a real loopback server that answers 503 / drops connections / stalls on cue."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import numpy as np
import pytest

from clients import (
    AsyncPSFClient,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PSFClient,
    RequestTimeoutError,
    ServerError,
    TransportError,
)
from clients._exceptions import error_from_response
from clients._retry import RetryPolicy

from .loopback import Reply, ScriptedServer, json_reply, npy_reply

KERNEL = np.eye(5, dtype=np.float32) / 5
QUERY = {"field": 0.5, "depth": 10.0, "wavelength": 550.0}


def busy_then_ok(busy: int, retry_after: str | None = "0"):
    headers = {"Retry-After": retry_after} if retry_after is not None else {}

    def handler(seen, index):
        if index < busy:
            return json_reply(503, {"detail": "overloaded, try later"}, **headers)
        return npy_reply(KERNEL)
    return handler


def waits(caplog) -> list[float]:
    """The delays the client chose before each retry, as its log states them."""
    return [float(record.args[-1]) for record in caplog.records if "retry" in record.msg]


def test_503_is_retried_honouring_retry_after(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="clients")
    with ScriptedServer(busy_then_ok(1, "1")) as server, PSFClient(server.url, retries=3, backoff=0.0) as client:
        psf = client.psf(**QUERY)
    np.testing.assert_array_equal(psf, KERNEL)
    assert len(server.seen) == 2
    assert waits(caplog) == [1.0], "Retry-After: 1 must be waited for"
    assert psf.meta.model == "fake" and psf.meta.version == 3


def test_retry_after_is_capped(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="clients")
    with ScriptedServer(busy_then_ok(1, "3600")) as server, \
            PSFClient(server.url, retries=1, max_retry_after=0.1) as client:
        client.psf(**QUERY)
    assert len(server.seen) == 2
    assert waits(caplog) == [0.1]


def test_503_without_retry_after_backs_off_and_gives_up_with_the_servers_word(caplog) -> None:
    with ScriptedServer(busy_then_ok(100, None)) as server, PSFClient(server.url, retries=2, backoff=0.01) as client, \
            caplog.at_level(logging.WARNING, logger="clients"), pytest.raises(OverloadedError) as caught:
        client.psf(**QUERY)
    assert len(server.seen) == 3  # one try + two retries
    assert caught.value.message == "overloaded, try later" and caught.value.retry_after is None
    assert sum("retry" in r.message for r in caplog.records) == 2


@pytest.mark.parametrize("status, error", [(422, InvalidRequestError), (404, NotFoundError), (500, ServerError)])
def test_other_errors_are_not_retried(status: int, error: type) -> None:
    with ScriptedServer(lambda seen, i: json_reply(status, {"detail": f"said with {status}"})) as server, \
            PSFClient(server.url, retries=3, backoff=0.01) as client, pytest.raises(error, match=f"said with {status}"):
        client.psf(**QUERY)
    assert len(server.seen) == 1


def test_dropped_connection_is_retried_for_idempotent_calls() -> None:
    handler = lambda seen, i: Reply(drop=True) if i == 0 else npy_reply(KERNEL)
    with ScriptedServer(handler) as server, PSFClient(server.url, retries=2, backoff=0.01) as client:
        np.testing.assert_array_equal(client.psf(**QUERY), KERNEL)
    assert len(server.seen) == 2


def test_policy_repeats_non_idempotent_calls_only_when_the_request_never_left() -> None:
    policy = RetryPolicy(retries=3, backoff=0.01)

    def failure(cause: Exception) -> TransportError:
        error = TransportError("x")
        error.__cause__ = cause
        return error

    request = httpx.Request("POST", "http://x/")
    dropped = failure(httpx.RemoteProtocolError("server disconnected", request=request))
    refused = failure(httpx.ConnectError("refused", request=request))
    assert policy.delay(0, dropped, idempotent=True) is not None
    assert policy.delay(0, dropped, idempotent=False) is None
    assert policy.delay(0, refused, idempotent=False) is not None
    assert policy.delay(0, OverloadedError("busy", retry_after=2.0), idempotent=False) == 2.0
    assert policy.delay(3, refused, idempotent=True) is None  # retries used up


def test_connection_refused_is_retried_then_a_transport_error(dead_url: str, caplog) -> None:
    with PSFClient(dead_url, retries=2, backoff=0.01) as client:
        with caplog.at_level(logging.WARNING, logger="clients"), pytest.raises(TransportError) as caught:
            client.psf(**QUERY)
        assert client.health() is False
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert sum("retry" in r.message for r in caplog.records) == 2


def test_stalled_server_is_a_timeout_error() -> None:
    with ScriptedServer(lambda seen, i: Reply(delay=1.0, body=b"late")) as server, \
            PSFClient(server.url, timeout=0.2, retries=0) as client, \
            pytest.raises(RequestTimeoutError, match="timed out") as caught:
        client.psf(**QUERY)
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


def test_async_client_retries_503_too() -> None:
    async def main() -> np.ndarray:
        async with AsyncPSFClient(server.url, retries=3, backoff=0.01) as client:
            return await client.psf(**QUERY)

    with ScriptedServer(busy_then_ok(2, "0")) as server:
        np.testing.assert_array_equal(asyncio.run(main()), KERNEL)
    assert len(server.seen) == 3


def test_retry_after_as_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    request = httpx.Request("GET", "http://x/psf")
    response = httpx.Response(503, json={"detail": "busy"}, headers={"Retry-After": format_datetime(when, usegmt=True)},
                              request=request)
    error = error_from_response(response)
    assert isinstance(error, OverloadedError) and 25 <= error.retry_after <= 31
