"""Limits before work: headers, credentials and body sizes are checked before any body is read or parsed;
every error the service builds matches the OpenAPI schema it publishes."""

from __future__ import annotations

import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest

from salesflow.config import Settings

UPLOAD_LIMIT = 64 * 1024


@pytest.fixture
def prod_api(
    serve: Callable[..., httpx.Client], prod_settings: Settings, tokens: dict[str, str]
) -> httpx.Client:
    settings = prod_settings.replaced(import_max_bytes=UPLOAD_LIMIT)
    return serve(settings)


def raw_request(client: httpx.Client, head: str, body_parts: list[bytes] = ()) -> tuple[int, bytes]:  # type: ignore[assignment]
    """Send `head` (request line and headers) and `body_parts` on a raw socket; the status and body.

    A raw socket can declare a body it never sends: an answer proves the server did not wait to read it."""
    url = urlsplit(str(client.base_url))
    with socket.create_connection((url.hostname, url.port), timeout=20) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        try:
            for part in body_parts:
                sock.sendall(part)
        except OSError:
            pass  # the server may answer and close before the whole body is sent
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
            if b"\r\n\r\n" in received and b"content-length" in received.lower():
                header, _, rest = received.partition(b"\r\n\r\n")
                length = int(header.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(rest) >= length:
                    break
    status_line, _, rest = received.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def head_for(client: httpx.Client, path: str, *headers: str) -> str:
    url = urlsplit(str(client.base_url))
    lines = [
        f"POST {url.path.rstrip('/')}{path} HTTP/1.1",
        f"Host: {url.hostname}",
        "Connection: close",
        *headers,
    ]
    return "\n".join(lines) + "\n"


def test_an_anonymous_huge_body_is_refused_before_it_is_read(prod_api: httpx.Client) -> None:
    head = head_for(prod_api, "/ml/forecast", "Content-Type: application/json", "Content-Length: 268435456")
    status, body = raw_request(prod_api, head)  # not one byte of the 256 MB is sent
    assert status == 401 and b"Missing Authorization header" in body


def test_a_declared_body_over_the_limit_is_a_413_before_it_is_read(
    prod_api: httpx.Client, tokens: dict[str, str]
) -> None:
    head = head_for(
        prod_api,
        "/ml/forecast",
        f"Authorization: Bearer {tokens['USER']}",
        "Content-Type: application/json",
        "Content-Length: 2097152",
    )
    status, body = raw_request(prod_api, head)
    assert status == 413 and b"the request body is larger than the 1 MiB allowed" in body


@pytest.mark.parametrize(
    ("path", "content_type", "size", "says"),
    [
        ("/ml/forecast", "application/json", 2 * 2**20, b"request body is larger than the 1 MiB"),
        (
            "/excel/preview",
            "multipart/form-data; boundary=x",
            4 * UPLOAD_LIMIT,
            b"file is larger than the 64 KiB",
        ),
    ],
)
def test_a_chunked_body_over_the_limit_is_a_413_while_it_streams(
    prod_api: httpx.Client, tokens: dict[str, str], path: str, content_type: str, size: int, says: bytes
) -> None:
    head = head_for(
        prod_api,
        path,
        f"Authorization: Bearer {tokens['ADMIN']}",
        f"Content-Type: {content_type}",
        "Transfer-Encoding: chunked",
    )
    preamble = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
    chunks = [preamble] + [b"x" * 16384] * (size // 16384) + [b"\r\n--x--\r\n"]
    parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks] + [b"0\r\n\r\n"]
    status, body = raw_request(prod_api, head, parts)
    assert status == 413 and says in body, body


def test_an_upload_within_its_limit_is_not_held_to_the_body_limit(
    serve: Callable[..., httpx.Client], make_settings: Callable[..., Settings], store_file
) -> None:
    api = serve(make_settings(dev_mode=True, java_jwt_secret=None, request_body_max_bytes=4096))
    content = b"date,sku,quantity\n" + b"2026-03-01,NOPE,1\n" * 2000  # 36 KB: over the body limit
    response = api.post("/excel/preview", files={"file": ("big.csv", content, "text/csv")})
    assert response.status_code == 200 and response.json()["total_rows"] == 2000


def test_oversized_headers_are_a_431(prod_api: httpx.Client) -> None:
    response = prod_api.get("/health", headers={"X-Padding": "y" * 20_000})
    assert response.status_code == 431 and "16 KiB" in response.json()["detail"]


# --- the 422s we build follow the published schema, and each route documents its error statuses ---


def test_our_422s_have_loc_msg_and_type(dev_api: httpx.Client) -> None:
    responses = [
        dev_api.get("/analytics/sales", params={"start_date": "2026-03-10", "end_date": "2026-03-01"}),
        dev_api.post("/ml/forecast", json={"scope": "GLOBAL", "model": "prophet"}),
        dev_api.post("/excel/preview", files={"file": ("x.csv", b"a,b\n1,2\n", "text/csv")}),
    ]
    schema = dev_api.get(dev_api.base_url.copy_with(path="/openapi.json")).json()["components"]["schemas"]
    required = set(schema["ValidationError"]["required"])
    for response in responses:
        assert response.status_code == 422, response.text
        for issue in response.json()["detail"]:
            assert required <= set(issue) and isinstance(issue["loc"], list) and issue["type"]


def test_error_statuses_are_documented_on_the_routes_that_give_them(dev_api: httpx.Client) -> None:
    paths = dev_api.get(dev_api.base_url.copy_with(path="/openapi.json")).json()["paths"]

    def statuses(path: str, method: str) -> set[str]:
        return set(paths[f"/api/v1{path}"][method]["responses"])

    assert {"401", "413", "404"} <= statuses("/ml/forecast", "post")
    assert {"401", "403", "404", "409", "413"} <= statuses("/excel/imports/{import_id}/commit", "post")
    assert {"401", "403"} <= statuses("/admin/cache", "get")
    assert {"401", "413"} <= statuses("/excel/preview", "post")
    assert "401" not in statuses("/health", "get")
