"""The models a server serves: the list, one card, one latent vector, and which latent dimensions matter."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParameter

from ..sampling.generator import Generator
from ..sampling.latent_activity import LatentActivity
from ..sampling.latents import MAX_SEED, MAX_TEMPERATURE
from .state import State

router = APIRouter(prefix="/v1/models")


@router.get("", summary="the models this server serves")
async def models(state: State) -> dict[str, Any]:
    default = state.settings.default_model
    return {"models": [model_summary(g, name == default) for name, g in state.settings.models.items()]}


@router.get("/{name}", summary="one model's card, without its golden arrays")
async def model_card(name: str, state: State) -> dict[str, Any]:
    card = state.generator_for(name).card.to_dict()
    card.pop("golden", None)
    return card


@router.get("/{name}/latents/{seed}/{index}", summary="the latent vector image `index` of `seed` decodes")
async def latent(
    name: str,
    seed: Annotated[int, PathParameter(ge=0, le=MAX_SEED)],
    index: Annotated[int, PathParameter(ge=0)],
    state: State,
    temperature: Annotated[float, Query(gt=0, le=MAX_TEMPERATURE)] = 1.0,
) -> dict[str, Any]:
    """Generator.latents(1, seed, start=index, temperature=...): POST it, changed, to /v1/decode."""
    generator = state.generator_for(name)
    z = generator.latents(1, seed, start=index, temperature=temperature)[0]  # one block of noise: microseconds
    return {"model": generator.name, "seed": seed, "index": index, "temperature": temperature, "latent": z.tolist()}


@router.get("/{name}/activity", summary="the latent dimensions the decoder uses, most active first")
async def activity(name: str, state: State) -> dict[str, Any]:
    """Per dimension, the variance of the encoder's z_mean over a fixed, seeded set of the model's own decoded
    samples (drawn through its prior, when it has one).

    The server has no dataset, and encode(decode(z)) tells which dimensions the decoder actually uses: an
    ignored one comes back the same for every image. Measured once per model, on first request. A model
    without an encoder cannot be measured: `measured` is false and its dimensions are listed in order.
    """
    generator = state.generator_for(name)
    found = state.activities.get(generator.name) or await state.run_job(lambda cancel: state.measured_activity(generator))
    return activity_summary(generator.name, found)


def model_summary(generator: Generator, default: bool) -> dict[str, Any]:
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


def activity_summary(name: str, activity: LatentActivity) -> dict[str, Any]:
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
