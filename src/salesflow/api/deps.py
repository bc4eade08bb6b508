"""Every request dependency, published as `Annotated` aliases (the only module defining providers)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import Scope

from salesflow.api.rate_limits import AUTH_FAILURES, EXPENSIVE, count_request
from salesflow.config import Settings
from salesflow.data.cache import Cache
from salesflow.data.sources.base import DataSource
from salesflow.errors import AuthError, PermissionDenied, TokenExpired
from salesflow.integration.jwt import DEV_USER
from salesflow.models.auth import User
from salesflow.resources import Resources
from salesflow.services.alerting.pipeline import AlertService
from salesflow.services.analytics.sales import SalesAnalyticsService
from salesflow.services.analytics.stock import StockAnalyticsService
from salesflow.services.excel_import.pipeline import ImportService
from salesflow.services.ml.accuracy import ForecastAccuracy
from salesflow.services.ml.anomalies import AnomalyService
from salesflow.services.ml.forecasting import ForecastService
from salesflow.services.reports.pipeline import ReportService
from salesflow.services.schedules import ScheduleService

# Every dependency is `async def`, however trivial: FastAPI runs a plain `def` in its thread pool, and those
# hand-offs (GIL included) put a tail of 150-300 ms on p99 under load (bench/production.py).

# Declares the bearer scheme in OpenAPI; the header itself is parsed below for precise 401 details.
_bearer_scheme = HTTPBearer(auto_error=False, description="Java-issued JWT (any token in DEV mode)")


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_settings_dep(resources: ResourcesDep) -> Settings:
    return resources.settings


async def get_cache(resources: ResourcesDep) -> Cache:
    return resources.cache


async def get_data_source(resources: ResourcesDep) -> DataSource:
    return resources.data_source


async def get_sales_analytics(resources: ResourcesDep) -> SalesAnalyticsService:
    return resources.sales_analytics


async def get_stock_analytics(resources: ResourcesDep) -> StockAnalyticsService:
    return resources.stock_analytics


async def get_forecasts(resources: ResourcesDep) -> ForecastService:
    return resources.forecasts


async def get_anomalies(resources: ResourcesDep) -> AnomalyService:
    return resources.anomalies


async def get_accuracy(resources: ResourcesDep) -> ForecastAccuracy:
    return resources.demand_forecasts.accuracy


async def get_imports(resources: ResourcesDep) -> ImportService:
    return resources.imports


async def get_reports(resources: ResourcesDep) -> ReportService:
    return resources.reports


async def get_schedules(resources: ResourcesDep) -> ScheduleService:
    return resources.schedules


async def get_alerts(resources: ResourcesDep) -> AlertService:
    return resources.alerts


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
AlertsDep = Annotated[AlertService, Depends(get_alerts)]
ImportDep = Annotated[ImportService, Depends(get_imports)]
ReportsDep = Annotated[ReportService, Depends(get_reports)]
SchedulesDep = Annotated[ScheduleService, Depends(get_schedules)]
ForecastDep = Annotated[ForecastService, Depends(get_forecasts)]
AnomalyDep = Annotated[AnomalyService, Depends(get_anomalies)]
AccuracyDep = Annotated[ForecastAccuracy, Depends(get_accuracy)]
SalesAnalyticsDep = Annotated[SalesAnalyticsService, Depends(get_sales_analytics)]
StockAnalyticsDep = Annotated[StockAnalyticsService, Depends(get_stock_analytics)]
CacheDep = Annotated[Cache, Depends(get_cache)]
DataSourceDep = Annotated[DataSource, Depends(get_data_source)]


def authenticate(authorization: str | None, resources: Resources) -> User:
    """The caller of an `Authorization` header value; in DEV mode every caller is the dev ADMIN."""
    if resources.settings.dev_mode:
        return DEV_USER
    if not authorization:
        raise AuthError("Missing Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        raise AuthError("Authorization header must use the Bearer scheme")
    token = token.strip()
    if not token:
        raise AuthError("Bearer token is empty")
    if resources.token_validator is None:  # impossible outside DEV: settings require the secret
        raise AuthError("Token validation is not configured")
    return resources.token_validator.validate(token)


async def authenticate_counted(authorization: str | None, client: str, resources: Resources) -> User:
    """`authenticate`, counting failures per client (past `RATE_LIMIT_AUTH_FAILURES` a minute: 429)."""
    try:
        return authenticate(authorization, resources)
    except TokenExpired:
        raise
    except AuthError:
        limit = resources.settings.rate_limits.auth_failures
        if limit:
            await count_request(
                resources.cache, AUTH_FAILURES, client, limit=limit, what="failed authentications"
            )
        raise


async def authenticate_scope(scope: Scope) -> User:
    """`authenticate_counted` for the request guard, which runs before FastAPI has built a request."""
    resources = scope["app"].state.resources
    headers = Headers(scope=scope)
    peer = (scope.get("client") or ("unknown", 0))[0]
    client = client_address(peer, headers.get("x-forwarded-for"), resources.settings.http.trusted_proxies)
    return await authenticate_counted(headers.get("authorization"), client, resources)


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[IPv4Network | IPv6Network]) -> str:
    """The client a request comes from: the TCP peer, unless it is a trusted proxy; then the right-most
    `X-Forwarded-For` address that is not a trusted proxy (anything left of it a client may have forged)."""
    hops = [hop.strip() for hop in (forwarded_for or "").split(",")][::-1]
    for address in [peer, *hops]:
        try:
            ip = ip_address(address)
        except ValueError:  # an unreadable hop: the last trusted one is all that is known
            return peer
        if not any(ip in network for network in trusted):
            return address
    return peer


async def get_current_user(
    request: Request,
    resources: ResourcesDep,
    _scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
) -> User:
    """The caller, from `Authorization: Bearer <jwt>`."""
    return await authenticate_request(request, resources)


async def authenticate_request(request: Request, resources: Resources) -> User:
    """`authenticate_counted` for a request's own `Authorization` header and client address."""
    peer = request.client.host if request.client else "unknown"
    trusted = resources.settings.http.trusted_proxies
    client = client_address(peer, request.headers.get("x-forwarded-for"), trusted)
    return await authenticate_counted(request.headers.get("Authorization"), client, resources)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def limit_expensive(user: CurrentUser, resources: ResourcesDep) -> None:
    """Counts a request of an expensive route (forecasts, anomaly scans, imports, report jobs) per user."""
    limit = resources.settings.rate_limits.expensive
    if limit:
        await count_request(resources.cache, EXPENSIVE, user.subject, limit=limit, what="expensive requests")


def require_roles(*roles: str) -> Callable[[User], Awaitable[None]]:
    """Guard for `dependencies=[Depends(require_roles(Role.ADMIN))]`: 403 unless the caller has a role."""

    async def guard(user: CurrentUser) -> None:
        if not user.has_any_role(*roles):
            raise PermissionDenied(f"This action requires the role {' or '.join(roles)}")

    guard.required_roles = roles  # type: ignore[attr-defined]  # read when documenting 403s
    return guard
