"""Every failure of a request as JSON, {"error": {"code", "message"}}, with the status that fits it."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import Cancelled, InvalidArgumentError, ModelCardError, ModelIntegrityError, ModelNotFoundError, VaeGenError

log = logging.getLogger(__name__)


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


async def api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def library_error(request: Request, exc: Exception) -> JSONResponse:
    status, code = next((v for k, v in ERROR_STATUS.items() if isinstance(exc, k)), (400, "bad_value"))
    if isinstance(exc, Cancelled):
        status, code = 503, "timeout"
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc)
    return error_response(status, code, in_http_terms(str(exc)))


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors())
    return error_response(422, "invalid_request", problems)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = f"no route {request.method} {request.url.path}" if exc.status_code in (404, 405) else str(exc.detail)
    return error_response(exc.status_code, code, message)


async def server_fault(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path)
    return error_response(500, "internal", "the server failed; its log says why")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every failure as JSON: ours, the library's, FastAPI's validation, Starlette's routing, and bugs (500)."""
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(VaeGenError, library_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, server_fault)
