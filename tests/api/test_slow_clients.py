"""`salesflow serve` bounds what a slow client holds: a connection whose request headers do not arrive in
time is closed (uvicorn alone keeps it open for as long as the client likes)."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import dev_server_process

HEADER_TIMEOUT = "1"
PATIENCE_SECONDS = 60.0  # far past the deadline: only a connection never closed reaches it


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    folder: Path = tmp_path_factory.mktemp("slow_clients")
    with dev_server_process(folder, HTTP_HEADER_TIMEOUT_SECONDS=HEADER_TIMEOUT) as (_, client):
        yield client


def _connect(api: httpx.Client) -> socket.socket:
    connection = socket.create_connection((api.base_url.host, api.base_url.port), timeout=PATIENCE_SECONDS)
    return connection


def _closed_by_server(connection: socket.socket) -> bool:
    try:
        return connection.recv(1024) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "],
    ids=["nothing", "half the headers"],
)
def test_a_connection_whose_headers_never_complete_is_closed(api: httpx.Client, sent: bytes) -> None:
    with _connect(api) as connection:
        connection.sendall(sent)
        assert _closed_by_server(connection)  # a socket.timeout here: the server kept it open
    assert api.get("/health").status_code == 200


def test_headers_in_time_are_answered_and_a_kept_alive_connection_idles_past_the_deadline(
    api: httpx.Client,
) -> None:
    """The deadline runs from a connection's start or its request's first byte to the end of the headers:
    the idle time between two requests of a kept-alive connection is uvicorn's keep-alive (5 s)."""
    connection = http.client.HTTPConnection(api.base_url.host, api.base_url.port, timeout=PATIENCE_SECONDS)
    try:
        for request in range(2):
            if request:
                time.sleep(2 * float(HEADER_TIMEOUT))  # idle past the header deadline, within the keep-alive
            connection.request("GET", "/api/v1/health")
            answer = connection.getresponse()
            assert answer.status == 200 and answer.read()
            if not request:
                first_socket = connection.sock
        assert connection.sock is first_socket  # the same connection: the server did not close it
    finally:
        connection.close()
