"""A faithful HTTP stand-in of the Java system of record (java-system-of-record.md) on the embedded store.

It issues real HS256 tokens with Java's exact claims, answers a bare 403 for a missing, bad or expired
token, keeps `/sales/**` ADMIN-only, replies `text/plain` to `/sales/bulk`, and creates sales with Java's
rules (current price, server now, stock decremented, all-or-nothing). Two uses: in DEV mode the service
serves it on 127.0.0.1 (`DEV_JAVA_PORT`) from its own demo store, so that the frontend logs in, lists
products and forecasts them with ids that agree; and the tests talk to it as to Java (fault knobs on
`StandinState` produce outages, 5xx answers and slow replies).
"""

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import anyio
import jwt
import numpy as np
import orjson
import pandas as pd
from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from salesflow.data.sources.base import SaleInput, SaleItemInput
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.errors import Conflict, NotFound

# The dev secret seen in the Java repo: 61 bytes with a space (java-system-of-record.md).
DEV_SECRET = "5Yz8Q9wXJ2cU7aLm4RkT1bNf9PqS8zL3KxV7Nh9WsD4Ef2RgH1Jk8LpM Esau"
ISSUER = "salesflow-app"
MAX_RECENT_SALES = 10_000  # Java has no bound; the stand-in keeps one
MAX_HISTORY_DAYS = 36_500
DELAY_CHECK_SECONDS = 0.05


@dataclass
class JavaUser:
    id: int
    phone: str
    password: str
    username: str
    role: str


@dataclass
class StandinState:
    """The stand-in's data, clock and fault knobs."""

    store: EmbeddedStore
    secret: str = DEV_SECRET
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    access_lifetime_seconds: int = 3600
    users: dict[str, JavaUser] = field(default_factory=dict)
    login_count: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # statuses to answer the next requests with
    garbage: bool = False  # answer every request 200 with a body that is not JSON
    delay_seconds: float = 0.0  # every request is held this long (as long as it stays set)
    tokens_not_before: float = 0.0  # tokens issued earlier are refused (simulates a secret rotation)
    history_cache: dict[tuple[int, datetime, int], bytes] = field(default_factory=dict)
    writes: int = 0
    logouts: int = 0  # refresh tokens are not tracked: a logout is only counted
    record_requests: bool = True  # the tests read `requests`; a long-running demo keeps none
    clock: Callable[[], datetime] = field(default_factory=lambda: lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if not self.users:
            self.add_user(JavaUser(1, "0000000000", "password", "admin", "ADMIN"))
            self.add_user(JavaUser(2, "0600000001", "secret-user", "clerk", "USER"))

    def add_user(self, user: JavaUser) -> None:
        self.users[user.phone] = user

    def issue_access_token(self, user: JavaUser, *, lifetime: int | None = None) -> str:
        now = int(time.time())
        claims = {
            "sub": user.phone,
            "iss": ISSUER,
            "role": user.role,
            "username": user.username,
            "iat": now,
            "exp": now + (lifetime if lifetime is not None else self.access_lifetime_seconds),
        }
        return jwt.encode(claims, self.secret.encode(), algorithm="HS256", headers={"typ": None})

    def issue_refresh_token(self, user: JavaUser) -> str:
        now = int(time.time())
        claims = {"sub": user.phone, "iss": ISSUER, "iat": now, "exp": now + 14 * 86400}
        return jwt.encode(claims, self.secret.encode(), algorithm="HS256", headers={"typ": None})

    def now(self) -> datetime:
        """Java's server time: naive, local."""
        return self.clock().astimezone(self.timezone).replace(tzinfo=None)

    def sold_by_now(self) -> datetime:
        """The end (excluded) of every read of sales: a demo day's later sales are not made yet."""
        return self.now() + timedelta(microseconds=1)


def api_error(status: int, code: str, message: str, details: object = None) -> JSONResponse:
    body = {
        "status": status,
        "code": code,
        "message": message,
        "timestamp": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        "details": details,
    }
    return JSONResponse(body, status_code=status)


class _Forbidden(Exception):
    """Spring's bare 403 for a missing, invalid or expired token."""


class _AccessDenied(Exception):
    """An authenticated user without the role."""


def create_standin(state: StandinState, *, cors_origins: Sequence[str] = ()) -> FastAPI:
    app = FastAPI()
    app.state.standin = state
    if cors_origins:  # the frontend calls it from its own origin, as it calls Java
        app.add_middleware(
            CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["*"], allow_headers=["*"]
        )

    @app.middleware("http")
    async def faults(request: Request, call_next: Any) -> Response:
        if state.record_requests:
            state.requests.append((request.method, request.url.path))
        started = time.monotonic()
        # Re-read while waiting: a delay lowered (a test's Java recovering) ends the requests already held. It
        # is set from another thread, which no event of this loop would hear of.
        while time.monotonic() - started < state.delay_seconds:  # noqa: ASYNC110
            await asyncio.sleep(DELAY_CHECK_SECONDS)
        if state.fail_next:
            return Response(status_code=state.fail_next.pop(0))
        if state.garbage:
            return Response(b'{"content":[', media_type="application/json")
        return await call_next(request)  # type: ignore[no-any-return]

    @app.exception_handler(_Forbidden)
    async def bare_403(_: Request, __: Exception) -> Response:
        return Response(status_code=403)

    @app.exception_handler(_AccessDenied)
    async def access_denied(_: Request, __: Exception) -> Response:
        return api_error(403, "ACCESS_DENIED", "Access denied")

    def caller(request: Request) -> JavaUser:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise _Forbidden
        try:
            claims = jwt.decode(header[7:], state.secret.encode(), algorithms=["HS256"])
        except jwt.InvalidTokenError as exc:
            raise _Forbidden from exc
        user = state.users.get(str(claims.get("sub")))
        if user is None or float(claims.get("iat", 0)) < state.tokens_not_before:
            raise _Forbidden
        return user  # Java takes the role from its database, not from the token

    def admin(user: Annotated[JavaUser, Depends(caller)]) -> JavaUser:
        if user.role != "ADMIN":
            raise _AccessDenied
        return user

    Caller = Annotated[JavaUser, Depends(caller)]
    Admin = Annotated[JavaUser, Depends(admin)]

    @app.get("/actuator/health")
    async def actuator_health() -> dict[str, str]:
        return {"status": "UP"}

    @app.post("/api/v1/auth/login")
    async def login(request: Request) -> Response:
        body = orjson.loads(await request.body())
        user = state.users.get(str(body.get("phoneNumber")))
        if user is None or user.password != body.get("password"):
            return api_error(400, "RUNTIME_ERROR", "Invalid phone number or password")
        state.login_count += 1
        refresh = state.issue_refresh_token(user)
        return JSONResponse(
            {
                "accessToken": state.issue_access_token(user),
                "refreshToken": refresh,
                "refreshExpiresAt": (datetime.now() + timedelta(days=14)).isoformat(),
                "tokenType": "Bearer",
                "message": "Login successful",
                "user": {
                    "id": user.id,
                    "phoneNumber": user.phone,
                    "username": user.username,
                    "email": f"{user.username}@example.test",
                    "role": user.role,
                    "createdAt": "2025-01-01T00:00:00",
                    "updatedAt": "2025-01-01T00:00:00",
                },
            }
        )

    @app.get("/api/v1/auth/me")
    async def me(request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        try:
            claims = jwt.decode(header.removeprefix("Bearer "), state.secret.encode(), algorithms=["HS256"])
        except jwt.ExpiredSignatureError:
            return api_error(401, "TOKEN_EXPIRED", "Token expired")
        except jwt.InvalidTokenError:
            return api_error(401, "INVALID_SIGNATURE", "Invalid token")
        user = state.users[str(claims["sub"])]
        return JSONResponse({"username": user.username, "role": user.role, "phoneNumber": user.phone})

    @app.post("/api/v1/auth/logout")
    async def logout() -> Response:
        state.logouts += 1
        return Response(status_code=200)

    @app.get("/api/v1/products")
    async def products(_: Caller) -> Response:
        frame = await anyio.to_thread.run_sync(_product_rows, state.store)
        return Response(orjson.dumps([_product_dto(row) for row in frame]), media_type="application/json")

    @app.get("/api/v1/products/low-stock")
    async def low_stock_products(_: Admin) -> Response:
        rows = await anyio.to_thread.run_sync(_product_rows, state.store)
        low = [
            row
            for row in rows  # Java's `stockQuantity < lowStockThreshold`: a null threshold never matches
            if row["low_stock_threshold"] is not None and row["stock_quantity"] < row["low_stock_threshold"]
        ]
        return Response(orjson.dumps([_product_dto(row) for row in low]), media_type="application/json")

    @app.get("/api/v1/products/by-sku/{sku}")
    async def product_by_sku(sku: str, _: Caller) -> Response:
        return _one_product(state, lambda row: row["sku"] == sku, f"Product not found with sku: {sku}")

    @app.get("/api/v1/products/by-name/{name}")
    async def product_by_name(name: str, _: Caller) -> Response:
        return _one_product(state, lambda row: row["name"] == name, f"Product not found with name: {name}")

    @app.get("/api/v1/products/by-id/{product_id}")
    async def product_by_id(product_id: int, _: Caller) -> Response:
        return _one_product(state, lambda row: row["id"] == product_id, f"Product not found: {product_id}")

    @app.get("/api/v1/inventory")
    async def inventory(_: Caller) -> Response:
        rows = await anyio.to_thread.run_sync(_product_rows, state.store)
        return Response(
            orjson.dumps(
                [
                    {
                        "id": r["id"],
                        "sku": r["sku"],
                        "name": r["name"],
                        "description": r["description"],
                        "quantity": r["stock_quantity"] + 3,
                        "price": r["price"],
                        "cost": round(r["price"] * 0.6, 2),
                        "category": r["category"],
                        "createdAt": "2025-01-01T00:00:00",
                        "updatedAt": "2025-01-01T00:00:00",
                    }
                    for r in rows
                ]
            ),
            media_type="application/json",
        )

    async def sales_since(days: int | None) -> Response:
        """`SaleResponse[]` newest first, since the start of (today − days), or all of them (None)."""
        minute = state.now().replace(second=0, microsecond=0)
        key = (-1 if days is None else days, minute, state.writes)
        if key not in state.history_cache:
            today = datetime.combine(minute.date(), datetime.min.time())
            start = datetime.min if days is None else today - timedelta(days=days)
            body = await anyio.to_thread.run_sync(_history_json, state.store, start, state.sold_by_now())
            state.history_cache = {k: v for k, v in state.history_cache.items() if k[1:] == key[1:]}
            state.history_cache[key] = body  # rendering a large history is slow; kept a minute per `days`
        return Response(state.history_cache[key], media_type="application/json")

    @app.get("/api/v1/sales")
    async def all_sales(_: Admin) -> Response:
        return await sales_since(None)

    @app.get("/api/v1/sales/history")
    async def sales_history(_: Admin, days: int = 90) -> Response:
        if not 0 <= days <= MAX_HISTORY_DAYS:  # Java's date arithmetic fails there: its catch-all 400
            return api_error(400, "RUNTIME_ERROR", f"days must be between 0 and {MAX_HISTORY_DAYS}")
        return await sales_since(days)

    @app.get("/api/v1/sales/today")
    async def sales_today(_: Admin) -> Response:
        start = datetime.combine(state.now().date(), datetime.min.time())
        body = await anyio.to_thread.run_sync(_history_json, state.store, start, state.sold_by_now())
        return Response(body, media_type="application/json")

    @app.get("/api/v1/sales/recent")
    async def recent_sales(_: Admin, limit: int = 100) -> Response:
        if not 1 <= limit <= MAX_RECENT_SALES:
            return api_error(400, "RUNTIME_ERROR", f"limit must be between 1 and {MAX_RECENT_SALES}")
        body = await anyio.to_thread.run_sync(_recent_json, state.store, state.sold_by_now(), limit)
        return Response(body, media_type="application/json")

    @app.get("/api/v1/sales/history/by-sku/{sku}")
    async def sales_history_by_sku(sku: str, _: Admin, days: int = 90) -> Response:
        if not 0 <= days <= MAX_HISTORY_DAYS:
            return api_error(400, "RUNTIME_ERROR", f"days must be between 0 and {MAX_HISTORY_DAYS}")
        start = datetime.combine(state.now().date() - timedelta(days=days), datetime.min.time())
        lines = await anyio.to_thread.run_sync(state.store.sale_lines, start, state.sold_by_now())
        lines = lines[lines["sku"] == sku]
        daily = lines.groupby(lines["sold_at"].dt.date)["quantity"].sum().sort_index()
        return JSONResponse([{"date": str(d), "quantity": int(q)} for d, q in daily.items()])

    @app.post("/api/v1/sales/bulk")
    async def sales_bulk(request: Request, _: Admin) -> Response:
        try:
            body = orjson.loads(await request.body())
            sales = [_sale_input(sale) for sale in body]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            return api_error(400, "VALIDATION_ERROR", f"Invalid request: {exc}")
        try:
            await anyio.to_thread.run_sync(_write_java_sales, state, sales)
        except NotFound as exc:
            return api_error(404, "NOT_FOUND", exc.detail)
        except Conflict as exc:
            return api_error(400, "INSUFFICIENT_STOCK", exc.detail)
        return PlainTextResponse("Bulk sales imported successfully")

    return app


def _write_java_sales(state: StandinState, sales: list[SaleInput]) -> None:
    state.store.record_sales(sales, semantics="java", now=state.now())
    state.writes += 1


def _sale_input(sale: dict[str, Any]) -> SaleInput:
    items = []
    for item in sale["items"]:
        quantity = item["quantity"]
        if not isinstance(quantity, int) or quantity < 1:
            raise ValueError("quantity must be an integer >= 1")
        items.append(SaleItemInput(quantity=quantity, product_id=item.get("productId"), sku=item.get("sku")))
    return SaleInput(items=tuple(items))


def _product_rows(store: EmbeddedStore) -> list[dict[str, Any]]:
    frame = (
        store.cursor()
        .execute(
            "SELECT id, name, sku, CAST(price AS DOUBLE) AS price, stock_quantity, description, image_url,"
            " low_stock_threshold, category FROM products"
        )
        .df()
    )
    frame["low_stock_threshold"] = (
        frame["low_stock_threshold"].astype("object").where(frame["low_stock_threshold"].notna(), None)
    )
    return frame.to_dict("records")  # type: ignore[return-value]


def _product_dto(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "name": row["name"],
        "sku": row["sku"],
        "price": float(row["price"]),
        "stockQuantity": int(row["stock_quantity"]),
        "description": row["description"],
        "imageUrl": row["image_url"],
        "lowStockThreshold": None if row["low_stock_threshold"] is None else int(row["low_stock_threshold"]),
    }


def _one_product(state: StandinState, match: Any, message: str) -> Response:
    for row in _product_rows(state.store):
        if match(row):
            return JSONResponse(_product_dto(row))
    return api_error(404, "NOT_FOUND", message)


def _recent_json(store: EmbeddedStore, end: datetime, limit: int) -> bytes:
    """The `limit` newest sales before `end`, newest first."""
    row = (
        store.cursor()
        .execute(
            "SELECT MIN(sale_date) FROM (SELECT sale_date FROM sales WHERE sale_date < ?"
            " ORDER BY sale_date DESC, id DESC LIMIT ?)",
            [end, limit],
        )
        .fetchone()
    )
    if row is None or row[0] is None:
        return b"[]"
    return _history_json(store, row[0], end, limit=limit)


def _history_json(store: EmbeddedStore, start: datetime, end: datetime, *, limit: int | None = None) -> bytes:
    """`SaleResponse[]` newest first (at most `limit`), LocalDateTime strings as Jackson writes them."""
    lines = store.sale_lines(start, end)
    if lines.empty:
        return b"[]"
    lines = lines.iloc[::-1].reset_index(drop=True)  # newest sale first
    boundaries = np.flatnonzero(np.diff(lines["sale_id"].to_numpy())) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(lines)]])
    sold_at = [ts.isoformat() for ts in pd.to_datetime(lines["sold_at"].to_numpy()[starts]).to_pydatetime()]
    items = [
        {"productId": p, "productName": n, "sku": s, "quantity": q, "unitPrice": u, "subtotal": t}
        for p, n, s, q, u, t in zip(
            lines["product_id"].tolist(),
            lines["name"].tolist(),
            lines["sku"].tolist(),
            lines["quantity"].tolist(),
            lines["unit_price"].tolist(),
            lines["subtotal"].tolist(),
            strict=True,
        )
    ]
    sale_ids = lines["sale_id"].to_numpy()[starts].tolist()
    totals = lines["sale_total"].to_numpy()[starts].tolist()
    sales = [
        {"id": sale_ids[k], "saleDate": sold_at[k], "totalAmount": totals[k], "items": items[a:b]}
        for k, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True))
    ]
    return orjson.dumps(sales[:limit])
