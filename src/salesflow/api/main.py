"""App factory: wiring only (middleware, CORS, routers under `/api/v1`, lifespan building the resources)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import APIRouter, FastAPI, params
from fastapi.dependencies.models import Dependant
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from starlette.types import Scope

from salesflow import __version__
from salesflow.api.deps import authenticate_scope, get_current_user
from salesflow.api.errors import documented, install_error_handlers
from salesflow.api.middleware import (
    REQUEST_ID_HEADER,
    STALE_HEADER,
    RequestContextMiddleware,
    RequestGuard,
)
from salesflow.api.routes import (
    admin,
    alerts,
    analytics,
    auth,
    excel,
    health,
    metrics,
    ml,
    reports,
    schedules,
    stock,
)
from salesflow.background import ProcessKind, running_background
from salesflow.config import Settings, get_settings
from salesflow.data.sale_lines import Clock, utc_now
from salesflow.resources import Resources, open_resources

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    """Build the ASGI app; `settings` defaults to the environment's, `clock` to the real time."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.dev_mode:
            logger.warning(
                "DEV MODE: AUTHENTICATION IS OFF - every caller is an ADMIN; never expose this instance"
            )
        async with open_resources(settings, clock=clock) as resources:
            app.state.resources = resources
            logger.info("service started", extra={"data_source": resources.data_source.kind})
            async with running_background(resources, ProcessKind.API):
                yield

    docs = settings.shows_docs
    app = FastAPI(
        title="SalesFlow analytics service",
        version=__version__,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # No slash redirects: their Location is built from the request's Host header (an open redirect).
        redirect_slashes=False,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.http.cors_origins,
        allow_methods=["*"],
        allow_headers=["*"],
        # The frontend reads download names from Content-Disposition (frontend-contract.md).
        expose_headers=["Content-Disposition", REQUEST_ID_HEADER, STALE_HEADER],
    )
    upload_paths: set[str] = set()  # filled below, once the routes exist
    public_prefix = f"{API_PREFIX}{health.router.prefix}"
    app.add_middleware(
        RequestGuard,
        body_max_bytes=settings.http.body_max_bytes,
        upload_max_bytes=settings.imports.max_bytes,
        header_max_bytes=settings.http.header_max_bytes,
        is_upload=lambda scope: scope["path"] in upload_paths,
        is_public=lambda scope: (
            scope["path"].startswith(public_prefix) or not scope["path"].startswith(f"{API_PREFIX}/")
        ),
        authenticate=authenticate_scope,
    )
    app.add_middleware(RequestContextMiddleware, stale_since=_stale_since)
    install_error_handlers(app)
    api = APIRouter(prefix=API_PREFIX)
    for module in (health, auth, admin, analytics, stock, ml, excel, reports, schedules, alerts):
        routes = [route for route in module.router.routes if isinstance(route, APIRoute)]
        for route in routes:
            _document_errors(route)
        upload_paths.update(f"{API_PREFIX}{route.path}" for route in routes if _takes_a_file(route))
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(metrics.router)
    return app


def _takes_a_file(route: APIRoute) -> bool:
    """Routes that take a file (multipart) get the upload size limit instead of the body's."""
    return any(isinstance(field.field_info, params.File) for field in route.dependant.body_params)


def _document_errors(route: APIRoute) -> None:
    """Publish in OpenAPI the statuses a route can give from its dependencies: 401 when it needs a caller (and
    429, the failed-authentication limit), 403 when it needs a role, 400 and 413 when it takes a body (routes
    document their own 404/409)."""
    calls = _dependency_calls(route.dependant)
    statuses = [401, 429] if get_current_user in calls else []
    if any(hasattr(call, "required_roles") for call in calls):
        statuses.append(403)
    if route.dependant.body_params:
        statuses.extend((400, 413))
    route.responses = {**documented(*statuses), **route.responses}


def _dependency_calls(dependant: Dependant) -> list[object]:
    calls: list[object] = []
    for sub in dependant.dependencies:
        calls.append(sub.call)
        calls.extend(_dependency_calls(sub))
    return calls


def _stale_since(scope: Scope) -> datetime | None:
    resources: Resources | None = getattr(scope["app"].state, "resources", None)
    return resources.lines.stale_since if resources is not None else None


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0] if route.tags else 'default'}-{route.name}"
