"""Images of a run (as `vae-gen sample` makes them) and images of given latents, in the format asked for."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import numpy as np
from fastapi import APIRouter, Response

from ..output.images import grid, png_bytes
from .errors import ApiError
from .schemas import DecodeRequest, GenerateRequest
from .state import State

router = APIRouter(prefix="/v1")


@router.post("/generate", summary="images of a run, as `vae-gen sample` makes them", response_class=Response)
async def generate(request: GenerateRequest, state: State) -> Response:
    generator = state.generator_for(request.model)
    label = state.parsed_label(generator, request.class_)
    sampling = generator.sampling(request.n, request.seed, start=request.start, temperature=request.temperature,
                                  label=label, guidance=request.guidance)  # fmt: skip
    state.check_count(request.n)
    images = await state.run_job(lambda cancel: generator.images(sampling, cancel=cancel))
    return encoded(images, request.format, first_index=request.start)


@router.post("/decode", summary="images of given latents", response_class=Response)
async def decode(request: DecodeRequest, state: State) -> Response:
    generator = state.generator_for(request.model)
    label, guidance = state.label_of(generator, request.class_), generator.check_guidance(request.guidance)
    state.check_count(len(request.latents))
    if len({len(row) for row in request.latents}) != 1:
        raise ApiError(400, "bad_value", "latents must be a list of equally long lists of numbers")
    z = np.asarray(request.latents, np.float64)
    images = await state.run_job(lambda cancel: generator.decode_uint8(z, label=label, guidance=guidance))
    return encoded(images, request.format, first_index=0)


def encoded(images: np.ndarray, format: str, first_index: int) -> Response:
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
    encoded = [base64.b64encode(png_bytes(image)).decode() for image in images]
    body = {"images": [{"index": first_index + i, "png": png} for i, png in enumerate(encoded)]}
    return Response(json.dumps(body), media_type="application/json")
