"""Liveness, readiness, and the front door (a redirect to the web page)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, RedirectResponse

from .state import State

#: Where the web page is served: static files calling the same API as any client.
WEB_PATH = "/app"

router = APIRouter()


@router.get("/healthz", summary="alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="models loaded and their golden self-tests passed")
async def readyz(state: State) -> JSONResponse:
    settings = state.settings
    ready = bool(settings.models) and all(settings.selftests.get(name, False) for name in settings.models)
    body = {"ready": ready, "models": {name: settings.selftests.get(name, False) for name in settings.models}}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/", include_in_schema=False)
async def home() -> RedirectResponse:
    return RedirectResponse(f"{WEB_PATH}/")
