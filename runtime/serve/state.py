"""What the routes share: the settings and models, the decoding slots with their queue, and the caches.

One ServerState per app, in `app.state.vae_gen`; routes reach it through the `State` dependency.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, Request

from ..sampling.generator import Generator
from ..sampling.labels import parse_label_text
from ..sampling.latent_activity import LatentActivity, latent_activity
from .errors import ApiError

#: A request's class as the routes pass it on: a name or index, a blend of weights, or none.
LabelText = str | int | dict[str | int, float] | None
#: Jobs waiting for a decoding slot before new ones are turned away with 429.
QUEUE_LIMIT = 16
#: Seconds one request may take; longer ones stop at their next batch and answer 503.
REQUEST_SECONDS = 60.0
#: Decoded batches kept for the one-image endpoint: a page of thumbnails asks for neighbouring indices.
RECENT_BATCHES = 32


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


class ServerState:
    """The settings, the decoding slots and queue, and what is worth keeping between requests."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}  # a semaphore belongs to one event loop
        self.waiting = 0
        self.recent_batches = RecentBatches(RECENT_BATCHES)
        self.batches_in_flight: dict[tuple[Any, ...], asyncio.Future[np.ndarray]] = {}
        self.activities: dict[str, LatentActivity] = {}
        self.activity_lock = threading.Lock()

    async def run_job(self, job: Callable[[threading.Event], Any]) -> Any:
        """Run `job` in a worker thread when a slot is free; 429 when too many wait; 503 past the time limit."""
        if self.waiting >= QUEUE_LIMIT:
            raise ApiError(429, "busy", f"{self.waiting} requests are waiting; try again shortly", {"Retry-After": "1"})
        slot = self.slots.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(self.settings.jobs))
        self.waiting += 1
        try:
            await slot.acquire()
        finally:
            self.waiting -= 1
        cancel = threading.Event()
        try:
            return await asyncio.wait_for(asyncio.to_thread(job, cancel), self.settings.request_seconds)
        except asyncio.TimeoutError:
            cancel.set()  # the job stops at its next batch
            message = f"the request took over {self.settings.request_seconds:g} s; ask for fewer images"
            raise ApiError(503, "timeout", message) from None
        finally:
            slot.release()

    def generator_for(self, name: str | None) -> Generator:
        name = name or self.settings.default_model
        if name not in self.settings.models:
            raise ApiError(404, "unknown_model", f"no model {name!r}; this server has: {', '.join(self.settings.models)}")
        return self.settings.models[name]

    @staticmethod
    def label_of(generator: Generator, text: str | int | None) -> LabelText:
        """The `class` text (or index) as the model's label spec, checked now (a bad one is a 400 before any work)."""
        label = ServerState.parsed_label(generator, text)
        generator.labels(label)
        return label

    @staticmethod
    def parsed_label(generator: Generator, text: str | int | None) -> LabelText:
        """The `class` text (or index) as a label spec, for `Generator.sampling` to check."""
        return parse_label_text(text, generator.classes) if isinstance(text, str) else text

    def check_count(self, n: int) -> None:
        if n > self.settings.max_images:
            raise ApiError(413, "too_large", f"n {n}: at most {self.settings.max_images} images per request (--max-images)")

    def measured_activity(self, generator: Generator) -> LatentActivity:
        """In a worker thread: the first request measures, those that come meanwhile wait for its result."""
        with self.activity_lock:
            if generator.name not in self.activities:
                self.activities[generator.name] = latent_activity(generator)
            return self.activities[generator.name]


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.vae_gen
    return state


#: A route's parameter that receives the app's ServerState.
State = Annotated[ServerState, Depends(server_state)]
