"""`vae-gen serve`: the runtime over local HTTP, for apps in any language (the `serve` extra: FastAPI on uvicorn).

One process: the models load once and are shared; decoding runs in worker
threads, never on the event loop. The edge enforces the limits (images per
request, body size, uploaded pixels, concurrent jobs with a bounded queue,
time per request) and, when a key is set, bearer authentication compared in
constant time. Every error is JSON, {"error": {"code", "message"}}, with the
status that fits: 400 bad value, 401 no key, 404 unknown model or route, 413
too large, 422 malformed request, 429 busy (with Retry-After), 503 not ready
or out of time; a 500 is a bug, logged. Images are the CLI's images, byte for
byte: the same seeds, indices and batches (vae_gen.bulk), the same PNG encoder.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import io
import json
import logging
import re
import threading
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, File, Form, Query, Request, Response, UploadFile
from fastapi import Path as PathParameter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .engine import engine_tag
from .errors import (
    Cancelled,
    InvalidArgumentError,
    ModelCardError,
    ModelIntegrityError,
    ModelNotFoundError,
    VaeGenError,
)
from .generator import DEFAULT_BATCH_SIZE, Generator
from .guidance import MAX_GUIDANCE
from .images import grid, png_bytes
from .labels import parse_label_text
from .latent_activity import LatentActivity, latent_activity
from .latents import MAX_SEED, MAX_TEMPERATURE
from .user_inputs import PictureTooLargeError, model_input, read_picture

log = logging.getLogger(__name__)

#: Largest request body: a few uploaded pictures or a batch of latents.
MAX_BODY_BYTES = 8 * 2**20
#: A client that sends no part of its request body for this long is answered 408 and its connection freed:
#: a slow or stalled upload cannot hold a connection (and its buffers) for ever.
BODY_IDLE_SECONDS = 30.0
#: Jobs waiting for a decoding slot before new ones are turned away with 429.
QUEUE_LIMIT = 16
#: Seconds one request may take; longer ones stop at their next batch and answer 503.
REQUEST_SECONDS = 60.0
#: Deterministic images never change: clients and proxies may keep them for a year.
IMMUTABLE = "public, max-age=31536000, immutable"
#: Decoded batches kept for the one-image endpoint: a page of thumbnails asks for neighbouring indices.
RECENT_BATCHES = 32
#: Where the web page is served: static files calling the same API as any client.
WEB_PATH = "/app"


@dataclass
class ServerSettings:
    models: dict[str, Generator]
    default_model: str
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    max_images: int = 1024
    #: Decoding jobs run at once; others wait in a queue of QUEUE_LIMIT.
    jobs: int = 1
    request_seconds: float = REQUEST_SECONDS
    selftests: dict[str, bool] = field(default_factory=dict)


class ApiError(Exception):
    """An error with its HTTP status and code, raised by the handlers."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


#: Library errors -> (status, code).
ERROR_STATUS: dict[type[VaeGenError], tuple[int, str]] = {
    ModelNotFoundError: (404, "unknown_model"),
    InvalidArgumentError: (400, "bad_value"),
    ModelCardError: (500, "broken_model"),
    ModelIntegrityError: (500, "broken_model"),
}


def in_http_terms(message: str) -> str:
    """A library error in the API's words: its `label=` argument is the request's `class`."""
    return re.sub(r"(?:^|(?<=[\s(]))label=", "class", message)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


#: What `class` takes: as `vae-gen sample --class`.
CLASS_DESCRIPTION = ("a class-conditional model's class (required for one, refused for others): a name, an index, "
                     "all (image i of class i mod K) or a blend NAME:WEIGHT,NAME:WEIGHT (weights summing to 1)")
#: What `guidance` takes: as `vae-gen sample --guidance`.
GUIDANCE_DESCRIPTION = "a class-conditional model's class guidance (vae_gen.guidance); 0 is the decoder's own output"


class GenerateRequest(BaseModel):
    model: str | None = Field(None, description="a model the server loaded (default: its first)")
    # strict: JSON true is not the integer 1, nor "16" the number 16.
    n: int = Field(16, ge=1, strict=True, description="images: indices start .. start + n - 1 of the run")
    seed: int = Field(0, ge=0, le=MAX_SEED, strict=True)
    start: int = Field(0, ge=0, strict=True, description="the first image's index in the run")
    temperature: float = Field(1.0, gt=0, le=MAX_TEMPERATURE, strict=True, allow_inf_nan=False,
                               description="scale of the N(0, I) noise")  # fmt: skip
    class_: StrictStr | StrictInt | None = Field(None, alias="class", description=CLASS_DESCRIPTION)
    guidance: float = Field(0.0, ge=0, le=MAX_GUIDANCE, strict=True, allow_inf_nan=False, description=GUIDANCE_DESCRIPTION)
    format: Literal["png", "npy", "zip", "json"] = Field("png", description="png: one contact sheet")


class DecodeRequest(BaseModel):
    model: str | None = None
    latents: list[list[float]] = Field(..., min_length=1, description="float [n, latent_dim]")
    class_: StrictStr | StrictInt | None = Field(None, alias="class",
                                                 description=CLASS_DESCRIPTION + " (all: row i of class i mod K)")  # fmt: skip
    guidance: float = Field(0.0, ge=0, le=MAX_GUIDANCE, strict=True, allow_inf_nan=False, description=GUIDANCE_DESCRIPTION)
    format: Literal["png", "npy", "zip", "json"] = "png"


class RecentBatches:
    """The last `size` decoded batches, by (model, seed, first index, temperature, class, guidance): a small LRU cache."""

    def __init__(self, size: int) -> None:
        self.size, self.batches = size, collections.OrderedDict[tuple[Any, ...], np.ndarray]()

    def get(self, key: tuple[Any, ...]) -> np.ndarray | None:
        batch = self.batches.get(key)
        if batch is not None:
            self.batches.move_to_end(key)
        return batch

    def put(self, key: tuple[Any, ...], batch: np.ndarray) -> None:
        self.batches[key] = batch
        while len(self.batches) > self.size:
            self.batches.popitem(last=False)


class BodyLimit:
    """ASGI middleware: a body over `limit` bytes (declared or streamed) is answered 413 before it is read whole;
    one whose next part does not arrive within `idle_seconds` is answered 408."""

    def __init__(self, app: ASGIApp, limit: int, idle_seconds: float = BODY_IDLE_SECONDS) -> None:
        self.app, self.limit, self.idle_seconds = app, limit, idle_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or {}).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            refusal = error_response(413, "too_large", f"request body of {int(declared)} bytes; at most {self.limit}")
            await refusal(scope, receive, send)
            return
        seen, too_large, stalled, body_done = 0, False, False, False

        async def counted() -> Message:
            nonlocal seen, too_large, stalled, body_done
            if body_done:  # after the body, receive() waits for the client to disconnect: no time limit
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.idle_seconds)
            except asyncio.TimeoutError:
                stalled = body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            body_done = message.get("type") != "http.request" or not message.get("more_body", False)
            seen += len(message.get("body", b""))
            if seen > self.limit:  # a streamed (chunked) body: end it here, and answer 413 whatever the app says
                too_large = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def unless_refused(message: Message) -> None:
            if not (too_large or stalled):
                await send(message)

        await self.app(scope, counted, unless_refused)
        if too_large:
            await error_response(413, "too_large", f"request body over {self.limit} bytes")(scope, receive, send)
        elif stalled:
            problem = f"no part of the request body arrived for {self.idle_seconds:g} s"
            await error_response(408, "body_timeout", problem, {"connection": "close"})(scope, receive, send)


def create_app(settings: ServerSettings) -> FastAPI:
    """The HTTP API over `settings.models`; see the module docstring."""
    app = FastAPI(
        title="vae-gen",
        summary="Generate images with VAE decoders on CPU (onnxruntime): deterministic, seeded, local.",
        version=_version(),
    )
    slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}  # a semaphore belongs to one event loop
    waiting = 0

    async def run_job(job: Callable[[threading.Event], Any]) -> Any:
        """Run `job` in a worker thread when a slot is free; 429 when too many wait; 503 past the time limit."""
        nonlocal waiting
        if waiting >= QUEUE_LIMIT:
            raise ApiError(429, "busy", f"{waiting} requests are waiting; try again shortly", {"Retry-After": "1"})
        slot = slots.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(settings.jobs))
        waiting += 1
        try:
            await slot.acquire()
        finally:
            waiting -= 1
        cancel = threading.Event()
        try:
            return await asyncio.wait_for(asyncio.to_thread(job, cancel), settings.request_seconds)
        except asyncio.TimeoutError:
            cancel.set()  # the job stops at its next batch
            message = f"the request took over {settings.request_seconds:g} s; ask for fewer images"
            raise ApiError(503, "timeout", message) from None
        finally:
            slot.release()

    recent_batches = RecentBatches(RECENT_BATCHES)
    batches_in_flight: dict[tuple[Any, ...], asyncio.Future[np.ndarray]] = {}

    def generator_for(name: str | None) -> Generator:
        name = name or settings.default_model
        if name not in settings.models:
            raise ApiError(404, "unknown_model", f"no model {name!r}; this server has: {', '.join(settings.models)}")
        return settings.models[name]

    def label_of(generator: Generator, text: str | int | None) -> str | int | dict[str | int, float] | None:
        """The `class` text (or index) as the model's label spec, checked now (a bad one is a 400 before any work)."""
        label = parse_label_text(text, generator.classes) if isinstance(text, str) else text
        generator.labels(label)
        return label

    def check_count(n: int) -> None:
        if n > settings.max_images:
            raise ApiError(413, "too_large", f"n {n}: at most {settings.max_images} images per request (--max-images)")

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # The web page's static files hold no data: the API calls they make send the key.
        public = request.url.path in ("/healthz", "/") or request.url.path.startswith(f"{WEB_PATH}/")
        if settings.api_key is not None and not public:
            # RFC 7235: the scheme is case-insensitive ("bearer" too); the key is compared in constant time.
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            matches = hmac.compare_digest(token.strip().encode("latin-1", "replace"), settings.api_key.encode())
            if scheme.lower() != "bearer" or not matches:
                return error_response(401, "unauthorized", "this server needs Authorization: Bearer KEY",
                                      {"WWW-Authenticate": "Bearer"})  # fmt: skip
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(VaeGenError)
    async def library_error(request: Request, exc: VaeGenError) -> JSONResponse:
        status, code = next((v for k, v in ERROR_STATUS.items() if isinstance(exc, k)), (400, "bad_value"))
        if isinstance(exc, Cancelled):
            status, code = 503, "timeout"
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return error_response(status, code, in_http_terms(str(exc)))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors())
        return error_response(422, "invalid_request", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = f"no route {request.method} {request.url.path}" if exc.status_code in (404, 405) else str(exc.detail)
        return error_response(exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def server_fault(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, "internal", "the server failed; its log says why")

    @app.get("/healthz", summary="alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="models loaded and their golden self-tests passed")
    async def readyz() -> JSONResponse:
        ready = bool(settings.models) and all(settings.selftests.get(name, False) for name in settings.models)
        body = {"ready": ready, "models": {name: settings.selftests.get(name, False) for name in settings.models}}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/v1/models", summary="the models this server serves")
    async def models() -> dict[str, Any]:
        return {"models": [_model_summary(g, name == settings.default_model) for name, g in settings.models.items()]}

    @app.get("/v1/models/{name}", summary="one model's card, without its golden arrays")
    async def model_card(name: str) -> dict[str, Any]:
        card = generator_for(name).card.to_dict()
        card.pop("golden", None)
        return card

    @app.get(
        "/v1/models/{name}/images/{seed}/{index}.png",
        summary="one image: the PNG `vae-gen sample` writes for this seed and index",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    async def one_image(
        request: Request,
        name: str,
        seed: Annotated[int, PathParameter(ge=0, le=MAX_SEED)],
        index: Annotated[int, PathParameter(ge=0)],
        temperature: Annotated[float, Query(gt=0, le=MAX_TEMPERATURE)] = 1.0,
        class_: Annotated[str | None, Query(alias="class", description=CLASS_DESCRIPTION)] = None,
        guidance: Annotated[float, Query(ge=0, le=MAX_GUIDANCE, description=GUIDANCE_DESCRIPTION)] = 0.0,
    ) -> Response:
        generator = generator_for(name)
        label, guidance = label_of(generator, class_), generator.check_guidance(guidance)
        labels = generator.labels(label)
        spec = None if labels is None else json.dumps(labels.spec, sort_keys=True)
        # Everything the bytes depend on: the graphs (the prior's too: a refitted prior keeps the decoder), seed,
        # index, temperature, class, guidance, and the engine (another CPU's kernels may round a pixel the other
        # way), so that equal ETags from two servers mean equal bytes.
        prior = generator.card.prior.graph.sha256 if generator.use_prior and generator.card.prior is not None else None
        guided = f"/{guidance!r}" if guidance else ""
        tag = '"' + hashlib.sha256(
            f"{generator.card.decoder.sha256}/{prior}/{seed}/{index}/{temperature!r}/{spec}{guided}/{engine_tag()}".encode()
        ).hexdigest()[:32] + '"'
        headers = {"ETag": tag, "Cache-Control": IMMUTABLE}
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers=headers)
        first = index - index % DEFAULT_BATCH_SIZE
        key = (generator.name, seed, first, temperature, spec, guidance)
        batch = recent_batches.get(key)
        if batch is None:
            # Image i is decoded in its batch of the run, as `sample` decodes it; neighbours will ask for the rest,
            # often at once: they all wait for the one decoding of their batch.
            decoding = batches_in_flight.get(key)
            if decoding is None:
                decoding = asyncio.ensure_future(run_job(
                    lambda cancel: generator.generate(DEFAULT_BATCH_SIZE, seed, start=first, temperature=temperature,
                                                      label=label, guidance=guidance, cancel=cancel)
                ))  # fmt: skip
                batches_in_flight[key] = decoding
                decoding.add_done_callback(lambda _: batches_in_flight.pop(key, None))
            batch = await asyncio.shield(decoding)
            recent_batches.put(key, batch)
        return Response(png_bytes(batch[index - first]), media_type="image/png", headers=headers)

    @app.get("/v1/models/{name}/latents/{seed}/{index}", summary="the latent vector image `index` of `seed` decodes")
    async def latent(
        name: str,
        seed: Annotated[int, PathParameter(ge=0, le=MAX_SEED)],
        index: Annotated[int, PathParameter(ge=0)],
        temperature: Annotated[float, Query(gt=0, le=MAX_TEMPERATURE)] = 1.0,
    ) -> dict[str, Any]:
        """Generator.latents(1, seed, start=index, temperature=...): POST it, changed, to /v1/decode."""
        generator = generator_for(name)
        z = generator.latents(1, seed, start=index, temperature=temperature)[0]  # one block of noise: microseconds
        return {"model": generator.name, "seed": seed, "index": index, "temperature": temperature, "latent": z.tolist()}

    activities: dict[str, LatentActivity] = {}
    activity_lock = threading.Lock()

    def measured_activity(generator: Generator) -> LatentActivity:
        # In a worker thread: the first request measures, those that come meanwhile wait for its result.
        with activity_lock:
            if generator.name not in activities:
                activities[generator.name] = latent_activity(generator)
            return activities[generator.name]

    @app.get("/v1/models/{name}/activity", summary="the latent dimensions the decoder uses, most active first")
    async def activity(name: str) -> dict[str, Any]:
        """Per dimension, the variance of the encoder's z_mean over a fixed, seeded set of the model's own decoded
        samples (drawn through its prior, when it has one).

        The server has no dataset, and encode(decode(z)) tells which dimensions the decoder actually uses: an
        ignored one comes back the same for every image. Measured once per model, on first request. A model
        without an encoder cannot be measured: `measured` is false and its dimensions are listed in order.
        """
        generator = generator_for(name)
        found = activities.get(generator.name) or await run_job(lambda cancel: measured_activity(generator))
        return _activity_summary(generator.name, found)

    @app.post("/v1/generate", summary="images of a run, as `vae-gen sample` makes them", response_class=Response)
    async def generate(request: GenerateRequest) -> Response:
        generator = generator_for(request.model)
        label, guidance = label_of(generator, request.class_), generator.check_guidance(request.guidance)
        check_count(request.n)
        images = await run_job(
            lambda cancel: generator.generate(
                request.n, request.seed, start=request.start, temperature=request.temperature, label=label,
                guidance=guidance, cancel=cancel,
            )
        )
        return _encode(images, request.format, first_index=request.start)

    @app.post("/v1/decode", summary="images of given latents", response_class=Response)
    async def decode(request: DecodeRequest) -> Response:
        generator = generator_for(request.model)
        label, guidance = label_of(generator, request.class_), generator.check_guidance(request.guidance)
        check_count(len(request.latents))
        if len({len(row) for row in request.latents}) != 1:
            raise ApiError(400, "bad_value", "latents must be a list of equally long lists of numbers")
        z = np.asarray(request.latents, np.float64)
        images = await run_job(lambda cancel: generator.decode_uint8(z, label=label, guidance=guidance))
        return _encode(images, request.format, first_index=0)

    @app.post("/v1/reconstruct", summary="an uploaded picture, encoded and decoded (PNG grid)", response_class=Response)
    async def reconstruct(
        image: Annotated[UploadFile, File(description="any picture Pillow reads")],
        model: Annotated[str | None, Form()] = None,
        variations: Annotated[int, Form(ge=0, le=64)] = 0,
        seed: Annotated[int, Form(ge=0, le=MAX_SEED)] = 0,
        class_: Annotated[str | None, Form(alias="class", description="a conditional model: the class the picture shows")] = None,
        invert: Annotated[Literal["auto", "yes", "no"], Form(description="as vae-gen reconstruct --invert")] = "auto",
    ) -> Response:
        from .reconstruct import reconstruct_rows

        generator = generator_for(model)
        if not generator.has_encoder:
            raise ApiError(400, "bad_value", f"model {generator.name!r} has no encoder; reconstruct needs one")
        label = label_of(generator, class_)
        data = await image.read()

        def job(cancel: threading.Event) -> bytes:
            # Decoding the upload is part of the job: in the worker pool, in the queue and under the time limit, so
            # a large or slow picture never blocks the event loop (and /healthz) while it decodes.
            pixels = _read_upload(data, generator.image_shape)
            floats = model_input(pixels, generator.value_range, invert=invert)[None]
            rows = reconstruct_rows(generator, floats, variations, seed, label=label)
            buffer = io.BytesIO()
            grid(rows.reshape(-1, *generator.uint8_shape), columns=rows.shape[1]).save(buffer, format="PNG")
            return buffer.getvalue()

        return Response(await run_job(job), media_type="image/png")

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse(f"{WEB_PATH}/")

    app.mount(WEB_PATH, StaticFiles(directory=Path(__file__).parent / "web", html=True), name="web")
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])  # fmt: skip
    return app


def _read_upload(data: bytes, image_shape: tuple[int, int, int]) -> np.ndarray:
    try:
        return read_picture(io.BytesIO(data), image_shape, "the upload")
    except PictureTooLargeError as exc:
        raise ApiError(413, "too_large", str(exc)) from None
    except InvalidArgumentError as exc:
        raise ApiError(400, "bad_value", str(exc)) from None


def _encode(images: np.ndarray, format: str, first_index: int) -> Response:
    """uint8 images [n, H, W] or [n, H, W, 3] in the requested format."""
    if format == "png":
        buffer = io.BytesIO()
        grid(images).save(buffer, format="PNG")
        return Response(buffer.getvalue(), media_type="image/png")
    if format == "npy":
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(images), allow_pickle=False)  # the header is the array's own shape
        return Response(buffer.getvalue(), media_type="application/octet-stream",
                        headers={"Content-Disposition": 'attachment; filename="images.npy"'})  # fmt: skip
    names = [f"{first_index + i:06d}.png" for i in range(len(images))]
    if format == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
            for name, image in zip(names, images, strict=True):
                archive.writestr(name, png_bytes(image))
        return Response(buffer.getvalue(), media_type="application/zip",
                        headers={"Content-Disposition": 'attachment; filename="images.zip"'})  # fmt: skip
    import base64

    encoded = [base64.b64encode(png_bytes(image)).decode() for image in images]
    body = {"images": [{"index": first_index + i, "png": png} for i, png in enumerate(encoded)]}
    return Response(json.dumps(body), media_type="application/json")


def _model_summary(generator: Generator, default: bool) -> dict[str, Any]:
    return {
        "name": generator.name,
        "default": default,
        "latent_dim": generator.latent_dim,
        "image_shape": list(generator.image_shape),
        "value_range": list(generator.value_range),
        "classes": list(generator.classes),
        "has_encoder": generator.has_encoder,
        "test_metrics": generator.card.test_metrics,
    }


def _activity_summary(name: str, activity: LatentActivity) -> dict[str, Any]:
    if activity.variances is None:
        method = "none: the model has no encoder to measure with, so its dimensions are listed in order"
    else:
        method = (f"variance of the encoder's z_mean over {activity.samples} of the model's own decoded samples "
                  f"(seed {activity.seed})")  # fmt: skip
    return {
        "model": name,
        "measured": activity.measured,
        "dimensions": list(activity.order),
        "variances": None if activity.variances is None else list(activity.variances),
        "method": method,
    }


def _version() -> str:
    from . import __version__

    return __version__
