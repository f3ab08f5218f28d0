"""The FastAPI app: the shared state, the edge's limits, the error handlers, the routers and the web page."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from . import routes_generate, routes_health, routes_images, routes_models, routes_reconstruct
from .errors import install_error_handlers
from .limits import MAX_BODY_BYTES, BodyLimit, key_check
from .routes_health import WEB_PATH
from .state import ServerSettings, ServerState

#: The web page's static files (package data of vae_gen).
WEB_FILES = Path(__file__).parent.parent / "web"


def create_app(settings: ServerSettings) -> FastAPI:
    """The HTTP API over `settings.models` (see vae_gen.serve)."""
    app = FastAPI(
        title="vae-gen",
        summary="Generate images with VAE decoders on CPU (onnxruntime): deterministic, seeded, local.",
        version=_version(),
    )
    app.state.vae_gen = ServerState(settings)
    for routes in (routes_health, routes_models, routes_images, routes_generate, routes_reconstruct):
        app.include_router(routes.router)
    install_error_handlers(app)
    if settings.api_key is not None:
        # The web page's static files hold no data: the API calls they make send the key.
        app.middleware("http")(key_check(settings.api_key, public=_is_public))
    app.mount(WEB_PATH, StaticFiles(directory=WEB_FILES, html=True), name="web")
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])  # fmt: skip
    return app


def _is_public(path: str) -> bool:
    """Paths open without the API key: liveness, and the web page's front door and files."""
    return path in ("/healthz", "/") or path.startswith(f"{WEB_PATH}/")


def _version() -> str:
    from .. import __version__

    return __version__
