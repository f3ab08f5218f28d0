"""An uploaded picture, encoded and decoded: a PNG grid of the picture, its reconstruction and variations."""

from __future__ import annotations

import io
import threading
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, File, Form, Response, UploadFile

from ..errors import InvalidArgumentError
from ..output.images import grid
from ..sampling.latents import MAX_SEED
from ..sampling.user_inputs import PictureTooLargeError, model_input, read_picture
from .errors import ApiError
from .state import State

router = APIRouter(prefix="/v1")


@router.post("/reconstruct", summary="an uploaded picture, encoded and decoded (PNG grid)", response_class=Response)
async def reconstruct(
    image: Annotated[UploadFile, File(description="any picture Pillow reads")],
    state: State,
    model: Annotated[str | None, Form()] = None,
    variations: Annotated[int, Form(ge=0, le=64)] = 0,
    seed: Annotated[int, Form(ge=0, le=MAX_SEED)] = 0,
    class_: Annotated[str | None, Form(alias="class", description="a conditional model: the class the picture shows")] = None,
    invert: Annotated[Literal["auto", "yes", "no"], Form(description="as vae-gen reconstruct --invert")] = "auto",
) -> Response:
    from ..sampling.reconstruct import reconstruct_rows

    generator = state.generator_for(model)
    if not generator.has_encoder:
        raise ApiError(400, "bad_value", f"model {generator.name!r} has no encoder; reconstruct needs one")
    label = state.label_of(generator, class_)
    data = await image.read()

    def job(cancel: threading.Event) -> bytes:
        # Decoding the upload is part of the job: in the worker pool, in the queue and under the time limit, so
        # a large or slow picture never blocks the event loop (and /healthz) while it decodes.
        pixels = read_upload(data, generator.image_shape)
        floats = model_input(pixels, generator.value_range, invert=invert)[None]
        rows = reconstruct_rows(generator, floats, variations, seed, label=label)
        buffer = io.BytesIO()
        grid(rows.reshape(-1, *generator.uint8_shape), columns=rows.shape[1]).save(buffer, format="PNG")
        return buffer.getvalue()

    return Response(await state.run_job(job), media_type="image/png")


def read_upload(data: bytes, image_shape: tuple[int, int, int]) -> np.ndarray:
    """The uploaded picture as the model's uint8 pixels; 413 past the pixel bound, 400 when it cannot be read."""
    try:
        return read_picture(io.BytesIO(data), image_shape, "the upload")
    except PictureTooLargeError as exc:
        raise ApiError(413, "too_large", str(exc)) from None
    except InvalidArgumentError as exc:
        raise ApiError(400, "bad_value", str(exc)) from None
