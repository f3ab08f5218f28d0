"""Record the golden outputs of the shipped models: tests/golden/arrays.npz and tests/golden/digests.json.

arrays.npz holds a few images of each case, as the float decoder output and
as uint8: tests compare them on any CPU within the cross-engine tolerance of
the model's precision (vae_gen.model.engine.CROSS_ENGINE). digests.json holds the
sha256 of the latents (bit-exact on every machine) and of each case's whole
uint8 output, with the engine fingerprint that recorded them: those bytes
are only promised, and only tested, on that same engine.

Run it only when a change of output is intended (a new model, a new sampling
scheme), and say so in the commit:  python tests/golden/record.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

import vae_gen
from vae_gen.model.engine import engine_fingerprint

CASES = {"seed0_n64": {"n": 64, "seed": 0}, "seed2024_n300_t0.7": {"n": 300, "seed": 2024, "temperature": 0.7}}
LATENT_CASES = {"seed0_n600_dim16": (0, 600, 16), "seed18446744073709551615_n5_dim2": (2**64 - 1, 5, 2)}
#: Images of each case kept as arrays: spread over the case, first and last included.
KEPT_IMAGES = 8
HERE = Path(__file__).parent
ARRAYS, DIGESTS = HERE / "arrays.npz", HERE / "digests.json"


def digest(array) -> str:
    return hashlib.sha256(array.tobytes()).hexdigest()


def latent_digests() -> dict[str, str]:
    from vae_gen.sampling.latents import sample_latents

    return {name: digest(sample_latents(seed, 0, n, dim)) for name, (seed, n, dim) in LATENT_CASES.items()}


def kept_indices(n: int) -> list[int]:
    return sorted({int(i) for i in np.linspace(0, n - 1, KEPT_IMAGES)})


def label_of(generator, index: int):
    """Image i of a conditional model's golden case shows class i mod K (the run label "all"); else no label."""
    return generator.classes[index % len(generator.classes)] if generator.classes else None


def kept_outputs(generator, case: str) -> tuple[np.ndarray, np.ndarray]:
    """(float decoder output, uint8 image) of the kept images of `case`, each generated on its own from its index
    (batch size 1: on one engine an image's bytes do not depend on its batch, and emulated CPUs are slow)."""
    kwargs = CASES[case]
    n, seed, temperature = kwargs["n"], kwargs["seed"], kwargs.get("temperature", 1.0)
    floats, images = [], []
    for i in kept_indices(n):
        z = generator.latents(1, seed, temperature=temperature, start=i)
        label = label_of(generator, i)
        floats.append(generator.decode(z, label=label, batch_size=1))
        images.append(generator.generate(1, seed, temperature=temperature, start=i, label=label, batch_size=1))
    return np.concatenate(floats), np.concatenate(images)


def model_digests(name: str) -> dict[str, str]:
    generator = vae_gen.load(name)
    out = {"decoder_sha256": generator.card.decoder.sha256}
    label = "all" if generator.classes else None  # a conditional model: image i of class i mod K
    for case, kwargs in CASES.items():
        kwargs = dict(kwargs)
        out[case] = digest(generator.generate(kwargs.pop("n"), label=label, **kwargs))
    return out


def main() -> None:
    arrays = {}
    for name in vae_gen.list_models():
        generator = vae_gen.load(name)
        for case in CASES:
            arrays[f"{name}/{case}/float"], arrays[f"{name}/{case}/uint8"] = kept_outputs(generator, case)
    np.savez_compressed(ARRAYS, **arrays)
    record = {
        "engine": engine_fingerprint(),
        "latents": latent_digests(),
        "models": {name: model_digests(name) for name in vae_gen.list_models()},
    }
    DIGESTS.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {ARRAYS} and {DIGESTS}")


if __name__ == "__main__":
    main()
