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

The modules, in the order a request meets them: `limits` (body size and
stalls, the API key), `errors` (every failure as JSON), one router per
resource (`routes_health`, `routes_models`, `routes_images`,
`routes_generate`, `routes_reconstruct`), each reaching the shared `state`
(models, job slots, caches) through a dependency; `app` puts them together.
"""

from .app import create_app
from .state import ServerSettings

__all__ = ["ServerSettings", "create_app"]
