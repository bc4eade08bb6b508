"""Java calls have a total deadline and a circuit breaker: a failing Java is not waited on again and again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import pandas as pd
import pytest
from pydantic import SecretStr

from salesflow.clients.circuit import CircuitBreaker, CircuitOpen, CircuitState
from salesflow.config import Settings
from salesflow.data.sources.java_client import JavaClient
from salesflow.errors import UpstreamTimeout, UpstreamUnavailable
from salesflow.integration.java_demo import StandinState
from salesflow.resources import open_resources
from tests.builders import TODAY, pinned_clock
from tests.servers import UvicornThread, wait_until


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_circuit_opens_after_failures_in_a_row_and_one_probe_decides() -> None:
    clock = FakeClock()
    changes: list[CircuitState] = []
    circuit = CircuitBreaker(failure_threshold=3, open_seconds=10, clock=clock, on_change=changes.append)
    for _ in range(2):
        circuit.before_call()
        circuit.failed()
    circuit.before_call()
    circuit.succeeded()  # a success in between: the count starts again
    for _ in range(3):
        circuit.before_call()
        circuit.failed()
    states = [circuit.state]
    with pytest.raises(CircuitOpen) as refused:
        circuit.before_call()
    assert refused.value.retry_after == pytest.approx(10)
    clock.now += 10
    states.append(circuit.state)
    assert states == [CircuitState.OPEN, CircuitState.HALF_OPEN]
    circuit.before_call()  # the probe
    with pytest.raises(CircuitOpen):
        circuit.before_call()  # only one at a time
    circuit.failed()  # the probe failed: open again, for another 10 s
    states.append(circuit.state)
    clock.now += 10
    circuit.before_call()
    circuit.released()  # a cancelled probe lets the next one go
    circuit.before_call()
    circuit.succeeded()
    states.append(circuit.state)
    assert states[2:] == [CircuitState.OPEN, CircuitState.CLOSED]
    assert changes == [CircuitState.OPEN, CircuitState.CLOSED]


@pytest.fixture
async def hung_java() -> AsyncIterator[tuple[str, list[int]]]:
    """A server that accepts connections and never answers (a hung JVM behind its socket)."""
    connections: list[int] = []
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/api/v1", connections
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_hung_java_costs_one_deadline_per_call_then_none(hung_java: tuple[str, list[int]]) -> None:
    url, connections = hung_java
    async with httpx.AsyncClient(base_url=url, timeout=30, trust_env=False) as http:
        java = JavaClient(
            http=http,
            system_token=SecretStr("t"),
            read_retries=2,  # 3 attempts × 30 s without a deadline
            deadline_seconds=0.3,
            circuit=CircuitBreaker(failure_threshold=2, open_seconds=60),
        )
        for _ in range(2):
            with pytest.raises(UpstreamTimeout, match=r"not answer GET /api/v1/sales/history within 0.3 s"):
                await java.sale_history(1)
        seen = len(connections)
        with pytest.raises(UpstreamUnavailable, match=r"Java is failing; not calling it for 60 s more"):
            await java.sale_history(1)
        assert len(connections) == seen  # refused without touching the socket
        assert java.circuit.state == CircuitState.OPEN


async def test_the_circuit_closes_again_when_java_recovers(
    standin: tuple[UvicornThread, StandinState],
) -> None:
    server, state = standin
    clock = FakeClock()
    async with httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=5, trust_env=False) as http:
        java = JavaClient(
            http=http,
            service_phone="0000000000",
            service_password=SecretStr("password"),
            read_retries=0,
            circuit=CircuitBreaker(failure_threshold=2, open_seconds=5, clock=clock),
        )
        await java.account.token()
        state.fail_next = [503, 503]
        for _ in range(2):
            with pytest.raises(UpstreamUnavailable, match="HTTP 503"):
                await java.sale_history(1)
        state.requests.clear()
        with pytest.raises(UpstreamUnavailable, match="not calling it"):
            await java.sale_history(1)
        assert state.requests == []
        clock.now += 5  # the probe goes; Java answers again: closed, no restart
        assert len(await java.sale_history(1)) > 0
        assert java.circuit.state == CircuitState.CLOSED
        assert len(await java.sale_history(1)) > 0


async def test_with_java_hung_the_service_answers_from_the_last_lines(
    prod_settings: Settings, standin: tuple[UvicornThread, StandinState]
) -> None:
    """A hung Java costs one deadline; then the circuit is open and reads answer from the last lines and
    products without calling Java at all."""
    _, state = standin
    settings = prod_settings.replaced(java_circuit_failures=1, sales_refresh_seconds=0)
    async with open_resources(settings, clock=pinned_clock) as resources:
        try:
            first_day, last_day = TODAY - timedelta(days=30), TODAY - timedelta(days=1)
            known = await resources.lines.window(first_day, last_day)  # the cold load, at the usual deadline
            assert len(await resources.lines.products()) == 40
            assert resources.java is not None
            # Then a short deadline: a loaded machine may take longer for the cold load, never for a hang.
            resources.java.deadline_seconds = 0.5
            state.delay_seconds = 5  # hung, as far as a 0.5 s deadline can tell
            state.requests.clear()
            again = await resources.lines.window(first_day, last_day)  # the refresh times out: the last lines
            pd.testing.assert_frame_equal(again, known)
            assert resources.java.circuit.state == CircuitState.OPEN
            calls = len(state.requests)
            for _ in range(3):
                pd.testing.assert_frame_equal(await resources.lines.window(first_day, last_day), known)
                assert len(await resources.lines.products()) == 40
            assert len(state.requests) == calls  # nothing more was sent to the hung Java
        finally:
            state.delay_seconds = 0


def test_answers_from_the_last_data_say_since_when(
    prod_settings: Settings,
    standin: tuple[UvicornThread, StandinState],
    serve: Callable[[Settings], httpx.Client],
    tokens: dict[str, str],
) -> None:
    """While Java fails, every answer carries `X-Data-Stale-Since`; once Java answers again it is gone."""
    _, state = standin
    settings = prod_settings.replaced(
        # The cold load must fit in the deadline on a loaded machine (0.5 s did not, once, in CI).
        java_deadline_seconds=5.0,
        java_circuit_failures=1,
        java_circuit_open_seconds=0.2,
        sales_refresh_seconds=0,
        sales_refresh_wait_seconds=0.3,
    )
    api = serve(settings)
    auth = {"Authorization": f"Bearer {tokens['USER']}"}
    fresh = api.get("/analytics/sales", params={"period": "weekly"}, headers=auth)
    assert fresh.status_code == 200 and "x-data-stale-since" not in fresh.headers
    state.delay_seconds = 8  # hung: past the deadline, so the refresh fails and the circuit opens
    stale = api.get("/analytics/sales", params={"period": "monthly"}, headers=auth)
    assert stale.status_code == 200 and "x-data-stale-since" in stale.headers
    assert api.get("/health").headers["x-data-stale-since"] == stale.headers["x-data-stale-since"]
    state.delay_seconds = 0

    wait_until_fresh(api, auth)


def test_a_slow_java_is_not_waited_for_when_the_lines_are_known(
    prod_settings: Settings,
    standin: tuple[UvicornThread, StandinState],
    serve: Callable[[Settings], httpx.Client],
    tokens: dict[str, str],
) -> None:
    """A due refresh that Java is slow to answer is waited for `SALES_REFRESH_WAIT_SECONDS`, not the deadline:
    the answer uses the last lines (flagged stale) while the refresh goes on; fresh once Java answers."""
    _, state = standin
    deadline = 3.0
    settings = prod_settings.replaced(
        java_deadline_seconds=deadline,
        sales_refresh_seconds=0,
        sales_refresh_wait_seconds=0.3,
        java_circuit_open_seconds=0.2,
    )
    api = serve(settings)
    auth = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    known = api.get("/analytics/stock", headers=auth)  # the lines and the products are known
    assert known.status_code == 200 and "x-data-stale-since" not in known.headers
    state.delay_seconds = 8  # slower than the deadline
    for path in ("/analytics/sales?period=monthly", "/analytics/stock"):
        started = time.monotonic()
        answer = api.get(path, headers=auth)
        assert time.monotonic() - started < deadline  # answered without waiting for Java, or its deadline
        assert answer.status_code == 200 and "x-data-stale-since" in answer.headers
    state.delay_seconds = 0

    wait_until_fresh(api, auth)


def test_java_answering_garbage_is_an_upstream_failure_not_a_crash(
    prod_settings: Settings,
    standin: tuple[UvicornThread, StandinState],
    serve: Callable[[Settings], httpx.Client],
    tokens: dict[str, str],
) -> None:
    """Bodies that are not JSON: known data answers (flagged stale); what needs Java now says why it fails."""
    _, state = standin
    api = serve(prod_settings.replaced(sales_refresh_seconds=0))
    auth = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    assert api.get("/analytics/stock", headers=auth).status_code == 200  # lines and products known
    state.garbage = True
    stale = api.get("/analytics/sales", params={"period": "monthly"}, headers=auth)
    assert stale.status_code == 200 and "x-data-stale-since" in stale.headers
    ready = api.get("/health/ready")  # asks Java afresh
    assert ready.status_code == 503
    assert ready.json()["checks"]["data_source"]["detail"] == (
        "Java answered /actuator/health with a body that does not follow its contract (DecodeError)"
    )
    state.garbage = False


def wait_until_fresh(api: httpx.Client, auth: dict[str, str]) -> None:
    """Until an uncached answer comes without `X-Data-Stale-Since` (Java is answering again)."""

    def fresh_again() -> bool:
        answer = api.get("/analytics/sales", params={"period": "quarterly"}, headers=auth)
        return answer.status_code == 200 and "x-data-stale-since" not in answer.headers

    wait_until(fresh_again, timeout=30, what="fresh answers once Java answers again")
