"""The JSON bodies the API takes, and the words its parameters are documented with."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr

from ..sampling.guidance import MAX_GUIDANCE
from ..sampling.latents import MAX_SEED, MAX_TEMPERATURE

#: What `class` takes: as `vae-gen sample --class`.
CLASS_DESCRIPTION = ("a class-conditional model's class (required for one, refused for others): a name, an index, "
                     "all (image i of class i mod K) or a blend NAME:WEIGHT,NAME:WEIGHT (weights summing to 1)")
#: What `guidance` takes: as `vae-gen sample --guidance`.
GUIDANCE_DESCRIPTION = "a class-conditional model's class guidance (vae_gen.sampling.guidance); 0 is the decoder's own output"


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
