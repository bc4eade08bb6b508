"""Client of the Java system of record: the only module that knows its URLs, JSON and quirks.

Quirks handled here (java-system-of-record.md): a missing, bad or expired token gets a bare 403 (not 401);
failed logins are 400 `RUNTIME_ERROR`; `/sales/bulk` answers 200 `text/plain`; `/sales/**` is ADMIN-only, so
reads run under a service account that logs in again before its token expires and once after a 403.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import httpx
import jwt
import msgspec
import pandas as pd
from pydantic import SecretStr

from salesflow.clients.circuit import CircuitBreaker, CircuitOpen
from salesflow.data.sources import java_codec
from salesflow.data.sources.base import SaleInput
from salesflow.errors import (
    NotFound,
    UpstreamMalformed,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from salesflow.metrics import JAVA_CALLS, JAVA_DURATION

logger = logging.getLogger(__name__)

T = TypeVar("T")

_RETRY_STATUSES = frozenset({502, 503, 504})
_BACKOFF_SECONDS = 0.2


class ServiceAccount:
    """The ADMIN identity for background and aggregate reads: one login at a time, renewed before expiry."""

    def __init__(
        self,
        *,
        login: Callable[[], Awaitable[str]] | None,
        static_token: SecretStr | None = None,
        renew_margin_seconds: float = 120.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.login = login
        self.static_token = static_token
        self.renew_margin_seconds = renew_margin_seconds
        self.clock = clock
        self.login_count = 0
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """A token that is not about to expire, logging in (once, even under concurrency) when needed."""
        if self._is_fresh():
            return self._token  # type: ignore[return-value]  # _is_fresh implies a token
        async with self._lock:
            if self._is_fresh():
                return self._token  # type: ignore[return-value]
            if self.login is None:
                if self.static_token is None:
                    raise UpstreamRejected("no Java service credentials are configured", status=401)
                self._store(self.static_token.get_secret_value())
            else:
                self.login_count += 1
                self._store(await self.login())
                logger.info("java service account logged in")
            return self._token  # type: ignore[return-value]

    def invalidate(self, token: str) -> None:
        """Forget `token` after Java refused it, so the next call logs in again."""
        if token == self._token and self.login is not None:
            self._token = None

    def _is_fresh(self) -> bool:
        return self._token is not None and self.clock() < self._renew_at

    def _store(self, token: str) -> None:
        self._token = token
        self._renew_at = _renewal_time(token, self.renew_margin_seconds, now=self.clock())


class JavaClient:
    """Typed calls on the Java REST API over one shared `httpx.AsyncClient`."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        service_phone: str | None = None,
        service_password: SecretStr | None = None,
        system_token: SecretStr | None = None,
        read_retries: int = 2,
        deadline_seconds: float = 20.0,
        circuit: CircuitBreaker | None = None,
    ) -> None:
        self.http = http
        self.read_retries = read_retries
        # One call's whole time, retries and backoff included (not attempts × timeout).
        self.deadline_seconds = deadline_seconds
        self.circuit = circuit or CircuitBreaker()
        login = None
        if service_phone is not None and service_password is not None:
            phone, password = service_phone, service_password

            async def login() -> str:
                return await self.login(phone, password)

        self.account = ServiceAccount(login=login, static_token=system_token)

    async def login(self, phone: str, password: SecretStr) -> str:
        """`POST /auth/login` → access token; Java's 400 `RUNTIME_ERROR` means wrong credentials."""
        body = {"phoneNumber": phone, "password": password.get_secret_value()}
        # Logging in changes nothing on Java's side, so it is retried like a read.
        response = await self._send("POST", "/auth/login", json=body, token=None, idempotent=True)
        if response.status_code == 400:
            raise UpstreamRejected("Java refused the login (wrong phone number or password)", status=400)
        _raise_for_status(response)
        return _decoded("/auth/login", java_codec.login_decoder.decode, response.content).access_token

    async def products(self) -> pd.DataFrame:
        """Products with categories; `/products` and `/inventory` are fetched concurrently."""
        products, inventory = await asyncio.gather(
            self._service_get("/products"), self._service_get("/inventory"), return_exceptions=True
        )
        if isinstance(products, BaseException):
            raise products
        if isinstance(inventory, BaseException):
            # Categories only enrich the answer; the products themselves are authoritative.
            logger.warning("java /inventory failed; categories unknown", extra={"error": str(inventory)})
            return _decoded("/products", java_codec.decode_products, products, None)
        return _decoded("/products", java_codec.decode_products, products, inventory)

    async def sale_history(self, days: int) -> pd.DataFrame:
        """`GET /sales/history?days=N`: lines of sales since the start of (Java's today - N days)."""
        raw = await self._service_get("/sales/history", params={"days": days})
        return await anyio.to_thread.run_sync(_decoded, "/sales/history", java_codec.decode_sale_lines, raw)

    async def daily_quantity_by_sku(self, sku: str, *, days: int, today: date) -> pd.Series:
        """`GET /sales/history/by-sku/{sku}`, zero-filled: Java lists only the days that have sales."""
        path = f"/sales/history/by-sku/{quote(sku, safe='')}"
        raw = await self._service_get(path, params={"days": days})
        start = today - timedelta(days=days)
        return _decoded(
            path, functools.partial(java_codec.decode_daily_quantities, start=start, end=today), raw
        )

    async def bulk_sales(self, sales: Sequence[SaleInput], *, token: str) -> None:
        """`POST /sales/bulk` with the caller's own token; Java's 200 `text/plain` reply is success."""
        body = [
            {"items": [_item_body(i.product_id, i.sku, i.quantity) for i in sale.items]} for sale in sales
        ]
        response = await self._send("POST", "/sales/bulk", json=body, token=token, idempotent=False)
        if response.status_code == 403:
            raise UpstreamRejected("Java refused the caller's token for /sales/bulk (HTTP 403)", status=403)
        _raise_for_status(response)

    async def actuator_health(self, root_url: str) -> None:
        """`GET /actuator/health` (outside `/api/v1`): raises unless Java says UP."""
        response = await self._send("GET", f"{root_url}/actuator/health", token=None, idempotent=True)
        _raise_for_status(response)
        if _decoded("/actuator/health", msgspec.json.decode, response.content).get("status") != "UP":
            raise UpstreamUnavailable("Java reports it is not UP")

    async def _service_get(self, path: str, params: dict[str, Any] | None = None) -> bytes:
        """GET as the service account; a bare 403 means a stale token: log in again once and retry."""
        token = await self.account.token()
        response = await self._send("GET", path, params=params, token=token, idempotent=True)
        if response.status_code == 403:
            self.account.invalidate(token)
            token = await self.account.token()
            response = await self._send("GET", path, params=params, token=token, idempotent=True)
            if response.status_code == 403:
                raise UpstreamRejected(
                    f"Java refused the service account on {path} (HTTP 403): check its role", status=403
                )
        _raise_for_status(response)
        return response.content

    async def _send(
        self,
        method: str,
        url: str,
        *,
        token: str | None,
        idempotent: bool,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """One request within the deadline, retried with backoff on transport errors and 502/503/504 when
        idempotent; while the circuit is open (Java failing), refused at once."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = self.http.build_request(method, url, params=params, json=json, headers=headers)
        where = f"{method} {request.url.path}"
        try:
            self.circuit.before_call()
        except CircuitOpen as exc:
            JAVA_CALLS.labels("circuit_open").inc()
            raise UpstreamUnavailable(
                f"Java is failing; not calling it for {exc.retry_after:.0f} s more ({where})"
            ) from exc
        started = time.perf_counter()
        try:
            with anyio.fail_after(self.deadline_seconds):
                response = await self._attempts(request, where, idempotent=idempotent)
        except TimeoutError as exc:
            self._failed("timeout", started)
            raise UpstreamTimeout(f"Java did not answer {where} within {self.deadline_seconds:g} s") from exc
        except UpstreamTimeout:
            self._failed("timeout", started)
            raise
        except UpstreamUnavailable:
            self._failed("unavailable", started)
            raise
        except BaseException:
            self.circuit.released()
            raise
        if response.status_code in _RETRY_STATUSES:
            self._failed("unavailable", started)
        else:
            self.circuit.succeeded()
            JAVA_CALLS.labels("ok" if response.status_code < 400 else "rejected").inc()
            JAVA_DURATION.observe(time.perf_counter() - started)
        return response

    def _failed(self, outcome: str, started: float) -> None:
        self.circuit.failed()
        JAVA_CALLS.labels(outcome).inc()
        JAVA_DURATION.observe(time.perf_counter() - started)

    async def _attempts(self, request: httpx.Request, where: str, *, idempotent: bool) -> httpx.Response:
        attempts = 1 + (self.read_retries if idempotent else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self.http.send(request)
            except httpx.TimeoutException as exc:
                if last:
                    raise UpstreamTimeout(f"Java did not answer {where} in time") from exc
            except httpx.TransportError as exc:
                if last:
                    raise UpstreamUnavailable(
                        f"Java is unreachable ({type(exc).__name__} on {where})"
                    ) from exc
            else:
                if response.status_code not in _RETRY_STATUSES or last:
                    return response
            await asyncio.sleep(_BACKOFF_SECONDS * 2**attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")


def _decoded(where: str, decode: Callable[..., T], *args: Any) -> T:
    """`decode(*args)`; a body that does not follow Java's contract is an upstream failure, not a crash."""
    try:
        return decode(*args)
    except (msgspec.MsgspecError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UpstreamMalformed(
            f"Java answered {where} with a body that does not follow its contract ({type(exc).__name__})"
        ) from exc


def _raise_for_status(response: httpx.Response) -> None:
    """Translate Java's error replies into our exceptions, with its code and message when it sent them."""
    status = response.status_code
    if status < 400:
        return
    error = _api_error(response)
    where = f"{response.request.method} {response.request.url.path}"
    said = f": {error.code} {error.message}" if error.code or error.message else ""
    if status == 404:
        raise NotFound(error.message or f"Java has no such resource ({where})")
    if status in (502, 503, 504):
        raise UpstreamUnavailable(f"Java is unavailable (HTTP {status} on {where})")
    raise UpstreamRejected(f"Java answered HTTP {status} on {where}{said}", status=status, code=error.code)


def _api_error(response: httpx.Response) -> java_codec.ApiError:
    try:
        return java_codec.api_error_decoder.decode(response.content)
    except msgspec.DecodeError:
        return java_codec.ApiError()


def _item_body(product_id: int | None, sku: str | None, quantity: int) -> dict[str, object]:
    item: dict[str, object] = {"quantity": quantity}
    if product_id is not None:
        item["productId"] = product_id
    else:
        item["sku"] = sku
    return item


def _renewal_time(token: str, margin: float, *, now: float) -> float:
    """When (epoch seconds) to renew: before `exp` by `margin`, or by a fifth of a shorter lifetime."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return float("inf")  # not a JWT we can read: renew after Java refuses it (403)
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float):
        return float("inf")
    lifetime = exp - iat if isinstance(iat, int | float) else margin * 5
    return max(now, exp - min(margin, lifetime / 5))
