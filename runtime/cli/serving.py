"""The `vae-gen serve` command: the HTTP API of vae_gen.serve on uvicorn (the `serve` extra).

Safe by default: it binds 127.0.0.1; any other address needs an API key
(--api-key or $VAE_GEN_API_KEY), and starting without one is refused.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from typing import Any

from ..core.exit_codes import INTERRUPTED
from ..core.extras import require_serve_extra
from ..errors import InvalidArgumentError
from .args import int_at_least, positive_int

API_KEY_VARIABLE = "VAE_GEN_API_KEY"
LOOPBACK_NAMES = ("localhost",)


def add_serve_command(commands: Any, model_help: str) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the models over local HTTP, for apps in any language (needs vae-gen[serve])",
        description="An HTTP API over the models (OpenAPI at /docs and /openapi.json). Binds 127.0.0.1 unless "
        "--host says otherwise, and then needs --api-key.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int_at_least(0), default=8000, help="port (default 8000; 0: any free one)")
    serve.add_argument("--model", action="append", help=f"{model_help}; repeat to serve several, the first the default")
    serve.add_argument("--api-key", help=f"require Authorization: Bearer KEY on every endpoint but /healthz "
                                         f"(default: ${API_KEY_VARIABLE})")  # fmt: skip
    serve.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                       help="allow browser pages from this origin to call the API (repeatable; default: none)")
    serve.add_argument("--max-images", type=positive_int, default=1024, help="images per request (default 1024)")
    serve.add_argument("--threads", type=positive_int,
                       help="onnxruntime threads per model (default: one per CPU the process may use)")
    serve.set_defaults(run=_cmd_serve)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _cmd_serve(args: argparse.Namespace) -> int:
    key = args.api_key or os.environ.get(API_KEY_VARIABLE) or None
    if key is not None and not (key.isascii() and key.isprintable() and key.strip() == key):
        # An HTTP header carries ASCII; a key with other characters, or spaces at its ends, could never be sent.
        raise InvalidArgumentError("--api-key must be printable ASCII without leading or trailing spaces")
    if key is None and not is_loopback(args.host):
        raise InvalidArgumentError(
            f"--host {args.host}: serving beyond this machine needs an API key (--api-key KEY or ${API_KEY_VARIABLE}); "
            "without one, keep the default --host 127.0.0.1"
        )
    if args.port > 65535:
        raise InvalidArgumentError(f"--port must be from 0 to 65535, got {args.port}")
    require_serve_extra()
    import uvicorn

    from ..sampling.generator import Generator
    from ..serve import ServerSettings, create_app

    models: dict[str, Generator] = {}
    for model in args.model or [None]:
        generator = Generator(model, threads=args.threads)
        if generator.name in models:
            raise InvalidArgumentError(f"--model {model}: a second model named {generator.name!r}")
        models[generator.name] = generator
    settings = ServerSettings(
        models=models, default_model=next(iter(models)), api_key=key, cors_origins=tuple(args.cors_origin),
        max_images=args.max_images, selftests={name: g.selftest().passed for name, g in models.items()},
    )  # fmt: skip
    failed = [name for name, passed in settings.selftests.items() if not passed]
    if failed:
        print(f"vae-gen serve: warning: {', '.join(failed)} failed the golden self-test; /readyz says not ready", file=sys.stderr)
    print(f"vae-gen serve: {', '.join(models)} on http://{args.host}:{args.port} (API documentation: /docs)", file=sys.stderr)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host=args.host, port=args.port, log_level="warning"))
    server.run()
    if server.should_exit:  # uvicorn stopped on SIGINT or SIGTERM, after finishing the requests in flight
        print("vae-gen serve: interrupted; stopped serving", file=sys.stderr)
        return INTERRUPTED
    return 0
