"""Record tests/golden/digests.json: sha256 of latents and of each shipped model's images for fixed seeds.

Run it only when a change of output is intended (a new model, a new sampling
scheme), and say so in the commit:  python tests/golden/record.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import vae_gen

CASES = {"seed0_n64": {"n": 64, "seed": 0}, "seed2024_n300_t0.7": {"n": 300, "seed": 2024, "temperature": 0.7}}
LATENT_CASES = {"seed0_n600_dim16": (0, 600, 16), "seed18446744073709551615_n5_dim2": (2**64 - 1, 5, 2)}


def digest(array) -> str:
    return hashlib.sha256(array.tobytes()).hexdigest()


def latent_digests() -> dict[str, str]:
    from vae_gen.latents import sample_latents

    return {name: digest(sample_latents(seed, 0, n, dim)) for name, (seed, n, dim) in LATENT_CASES.items()}


def model_digests(name: str) -> dict[str, str]:
    generator = vae_gen.load(name)
    out = {"decoder_sha256": generator.card.decoder.sha256}
    label = "all" if generator.classes else None  # a conditional model: image i of class i mod K
    for case, kwargs in CASES.items():
        kwargs = dict(kwargs)
        out[case] = digest(generator.generate(kwargs.pop("n"), label=label, **kwargs))
    return out


if __name__ == "__main__":
    record = {"latents": latent_digests(), "models": {name: model_digests(name) for name in vae_gen.list_models()}}
    path = Path(__file__).with_name("digests.json")
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")
