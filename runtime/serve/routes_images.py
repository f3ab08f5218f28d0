"""One image by its address: the PNG `vae-gen sample` writes for a seed and index, cacheable for ever."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParameter

from ..model.engine import engine_tag
from ..output.images import png_bytes
from ..sampling.generator import DEFAULT_BATCH_SIZE, Generator
from ..sampling.guidance import MAX_GUIDANCE
from ..sampling.latents import MAX_SEED, MAX_TEMPERATURE
from ..sampling.request import Sampling
from .schemas import CLASS_DESCRIPTION, GUIDANCE_DESCRIPTION
from .state import ServerState, State

#: Deterministic images never change: clients and proxies may keep them for a year.
IMMUTABLE = "public, max-age=31536000, immutable"

router = APIRouter(prefix="/v1/models")


@router.get(
    "/{name}/images/{seed}/{index}.png",
    summary="one image: the PNG `vae-gen sample` writes for this seed and index",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def one_image(
    request: Request,
    name: str,
    seed: Annotated[int, PathParameter(ge=0, le=MAX_SEED)],
    index: Annotated[int, PathParameter(ge=0)],
    state: State,
    temperature: Annotated[float, Query(gt=0, le=MAX_TEMPERATURE)] = 1.0,
    class_: Annotated[str | None, Query(alias="class", description=CLASS_DESCRIPTION)] = None,
    guidance: Annotated[float, Query(ge=0, le=MAX_GUIDANCE, description=GUIDANCE_DESCRIPTION)] = 0.0,
) -> Response:
    generator = state.generator_for(name)
    first = index - index % DEFAULT_BATCH_SIZE  # image i is decoded in its batch of the run, as `sample` does
    sampling = generator.sampling(DEFAULT_BATCH_SIZE, seed, start=first, temperature=temperature,
                                  label=state.parsed_label(generator, class_), guidance=guidance)  # fmt: skip
    spec = None if sampling.labels is None else json.dumps(sampling.label, sort_keys=True)
    tag = image_tag(generator, seed, index, sampling.temperature, spec, sampling.guidance)
    headers = {"ETag": tag, "Cache-Control": IMMUTABLE}
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    key = (generator.name, seed, first, sampling.temperature, spec, sampling.guidance)
    batch = state.recent_batches.get(key)
    if batch is None:
        batch = await decoded_batch(state, key, generator, sampling)
        state.recent_batches.put(key, batch)
    return Response(png_bytes(batch[index - first]), media_type="image/png", headers=headers)


def image_tag(generator: Generator, seed: int, index: int, temperature: float, spec: str | None, guidance: float) -> str:
    """The ETag of one image: everything its bytes depend on. The graphs (the prior's too: a refitted prior keeps
    the decoder), seed, index, temperature, class, guidance, and the engine (another CPU's kernels may round a
    pixel the other way), so that equal ETags from two servers mean equal bytes."""
    prior = generator.card.prior.graph.sha256 if generator.use_prior and generator.card.prior is not None else None
    guided = f"/{guidance!r}" if guidance else ""
    facts = f"{generator.card.decoder.sha256}/{prior}/{seed}/{index}/{temperature!r}/{spec}{guided}/{engine_tag()}"
    return '"' + hashlib.sha256(facts.encode()).hexdigest()[:32] + '"'


async def decoded_batch(state: ServerState, key: tuple[Any, ...], generator: Generator, sampling: Sampling) -> np.ndarray:
    """The batch `sampling` asks for, decoded once: neighbours will ask for the rest of it, often at once, and they
    all wait for the one decoding of their batch."""
    decoding = state.batches_in_flight.get(key)
    if decoding is None:  # (run_job returns the generator's array)
        decoding = asyncio.ensure_future(state.run_job(lambda cancel: generator.images(sampling, cancel=cancel)))
        state.batches_in_flight[key] = decoding
        decoding.add_done_callback(lambda _: state.batches_in_flight.pop(key, None))
    batch: np.ndarray = await asyncio.shield(decoding)
    return batch
