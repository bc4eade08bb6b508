"""Health and readiness bodies."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"
    service: str
    version: str


class DependencyCheck(BaseModel):
    name: str
    status: Literal["ok", "error", "degraded", "disabled"]
    detail: str | None = None
    latency_ms: float | None = None


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, DependencyCheck]
