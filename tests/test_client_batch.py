"""psf_batch chunking against a loopback server that enforces a batch limit the way the contract says
(413 announcing the limit in the X-Max-Batch-Size header). The same against the real server is in
test_client_array_routes.py."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from clients import AsyncPSFClient, InvalidRequestError, PayloadTooLargeError, PSFClient
from models_store.wire import Limits

from .loopback import ScriptedServer, json_reply, npy_reply

K = 3


def batch_server(limit: int, *, announce: bool = True, on_answers: bool = False):
    """Answers POST /psf/batch with kernels whose [0, 0] entry is the field value, so order is visible.

    ``announce``: 413s carry the limit headers; ``on_answers``: so do the 200s."""
    headers = Limits(max_batch=limit, max_grid=64, max_steps=16, max_body_bytes=1 << 20).headers()

    answered = []

    def handler(seen, index):
        body = seen.body
        field = np.atleast_1d(np.asarray(body["field"], dtype=np.float64))
        if field.size > limit:
            detail = f"batch of {field.size} conditions is over this server's limit of {limit}"
            return json_reply(413, {"detail": detail}, **(headers if announce else {}))
        psfs = np.zeros((field.size, K, K), dtype=np.float32)
        psfs[:, 0, 0] = field
        # a new version appears after the first answer: later chunks must still get version 3
        version = 3 if not answered or body.get("version") == "3" else 4
        answered.append(version)
        reply = npy_reply(psfs, version=version)
        if on_answers:
            reply.headers.update(headers)
        return reply
    return ScriptedServer(handler)


def fields(n: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, n)


def test_over_the_limit_is_split_in_order_and_the_limit_is_learned() -> None:
    with batch_server(limit=5) as server, PSFClient(server.url) as client:
        out = client.psf_batch(field=fields(13), depth=10.0, wavelength=np.full(13, 550.0))
        assert client.max_batch == 5
        requests_first = len(server.seen)
        client.psf_batch(field=fields(7), depth=10.0, wavelength=550.0)
        requests_second = len(server.seen) - requests_first
    assert out.shape == (13, K, K)
    np.testing.assert_array_equal(out[:, 0, 0], fields(13).astype(np.float32))
    assert requests_first == 1 + 3  # the refused try, then 5 + 5 + 3
    assert requests_second == 2  # 5 + 2, no 413 any more
    assert out.meta.version == 3
    later = [seen.body for seen in server.seen[2:requests_first]]
    assert all(body["version"] == "3" and body["model"] == "fake" for body in later), "version not pinned"
    # the per-row wavelength column was split with the fields; the number was sent whole
    assert [len(seen.body["wavelength"]) for seen in server.seen[1:requests_first]] == [5, 5, 3]
    assert all(seen.body["depth"] == 10.0 for seen in server.seen)


def test_a_known_limit_sends_no_oversized_request() -> None:
    with batch_server(limit=4) as server, PSFClient(server.url, max_batch=4) as client:
        out = client.psf_batch(field=list(fields(9)), depth=10.0, wavelength=550.0)
    assert [len(seen.body["field"]) for seen in server.seen] == [4, 4, 1]
    np.testing.assert_array_equal(out[:, 0, 0], fields(9).astype(np.float32))


def test_the_limit_of_an_earlier_answer_sends_no_oversized_request() -> None:
    with batch_server(limit=4, on_answers=True) as server, PSFClient(server.url) as client:
        client.psf_batch(field=fields(2), depth=10.0, wavelength=550.0)
        assert client.max_batch == 4 and client.server_limits is not None
        assert client.server_limits.max_grid == 64
        client.psf_batch(field=fields(9), depth=10.0, wavelength=550.0)
    assert [len(seen.body["field"]) for seen in server.seen] == [2, 4, 4, 1]


def test_a_limit_of_my_own_below_the_servers_is_kept() -> None:
    with batch_server(limit=4, on_answers=True) as server, PSFClient(server.url, max_batch=3) as client:
        client.psf_batch(field=fields(7), depth=10.0, wavelength=550.0)
        assert client.max_batch == 3
    assert [len(seen.body["field"]) for seen in server.seen] == [3, 3, 1]


def test_a_413_that_announces_no_limit_halves_the_chunk() -> None:
    # the message names a limit, but only the header counts: messages are for people
    with batch_server(limit=3, announce=False) as server, PSFClient(server.url) as client:
        out = client.psf_batch(field=fields(10), depth=10.0, wavelength=550.0)
    assert client.max_batch == 2  # 10 -> 5 -> 2
    np.testing.assert_array_equal(out[:, 0, 0], fields(10).astype(np.float32))


def test_a_413_on_other_calls_names_the_limit() -> None:
    with batch_server(limit=0) as server, PSFClient(server.url) as client, \
            pytest.raises(PayloadTooLargeError) as caught:
        client.psf_batch(field=[0.5], depth=10.0, wavelength=550.0)
    assert caught.value.status_code == 413 and caught.value.limit == 0
    assert len(server.seen) == 1


def test_mismatched_columns_are_refused_before_splitting() -> None:
    with batch_server(limit=2) as server, PSFClient(server.url, max_batch=2) as client, \
            pytest.raises(InvalidRequestError, match="depth has 3 values; give 1 or 5"):
        client.psf_batch(field=fields(5), depth=[5.0, 6.0, 7.0], wavelength=550.0)
    assert server.seen == []


def test_async_chunks_go_out_concurrently_and_come_back_in_order() -> None:
    async def main(url: str) -> np.ndarray:
        async with AsyncPSFClient(url) as client:
            return await client.psf_batch(field=fields(23), depth=10.0, wavelength=550.0)

    with batch_server(limit=4) as server:
        out = asyncio.run(main(server.url))
    np.testing.assert_array_equal(out[:, 0, 0], fields(23).astype(np.float32))
    assert out.meta.version == 3
    assert len(server.seen) == 1 + 6
