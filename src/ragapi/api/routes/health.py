"""Liveness and readiness probes (no authentication, no tenant data)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ragapi.api.drain import DRAIN
from ragapi.api.services import ReadinessDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process serves requests")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database, schema version, embedding model (required), Redis and broker (optional), "
    "each with its latency",
    responses={
        200: {"description": "`ok`, or `degraded`: an optional dependency failed (the body says which and why)"},
        503: {"description": "A required dependency failed its check; the body says which and why"},
    },
)
async def readyz(readiness: ReadinessDep) -> JSONResponse:
    if DRAIN.draining:  # a probe on a kept-alive connection: take this instance out of rotation
        return JSONResponse({"status": "draining", "checks": {}}, status_code=503)
    status, checks = await readiness.report()
    return JSONResponse({"status": status, "checks": checks}, status_code=503 if status == "unavailable" else 200)
