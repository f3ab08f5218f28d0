"""Limits at the edge, before a route runs: the request body's size and pace, and the API key."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response

#: Largest request body: a few uploaded pictures or a batch of latents.
MAX_BODY_BYTES = 8 * 2**20
#: A client that sends no part of its request body for this long is answered 408 and its connection freed:
#: a slow or stalled upload cannot hold a connection (and its buffers) for ever.
BODY_IDLE_SECONDS = 30.0

Endpoint = Callable[[Request], Awaitable[Response]]


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


def key_check(api_key: str, public: Callable[[str], bool]) -> Callable[[Request, Endpoint], Awaitable[Response]]:
    """HTTP middleware: every path but the `public` ones needs `Authorization: Bearer API_KEY` (401 otherwise)."""

    async def authenticate(request: Request, call_next: Endpoint) -> Response:
        if not public(request.url.path):
            # RFC 7235: the scheme is case-insensitive ("bearer" too); the key is compared in constant time.
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            matches = hmac.compare_digest(token.strip().encode("latin-1", "replace"), api_key.encode())
            if scheme.lower() != "bearer" or not matches:
                return error_response(401, "unauthorized", "this server needs Authorization: Bearer KEY",
                                      {"WWW-Authenticate": "Bearer"})  # fmt: skip
        return await call_next(request)

    return authenticate
