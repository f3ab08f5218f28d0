"""The parity gate: Keras and onnxruntime must agree before a model ships.

Checked in order, each failure a ParityError that says what and by how much:
output names, then shapes, then values within PARITY_TOLERANCE, at several
batch sizes and on latents far outside the prior (|z| up to FAR_LATENT).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from vae_gen.constants import FAR_LATENT, PARITY_BATCH_SIZES, PARITY_SEED, PARITY_TOLERANCE
from vae_gen.errors import VaeGenError

Outputs = dict[str, np.ndarray]


class ParityError(VaeGenError):
    """Keras and onnxruntime disagree beyond PARITY_TOLERANCE (or in names or shapes)."""


@dataclass
class ParityReport:
    tolerance: float = PARITY_TOLERANCE
    checks: list[dict] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float:
        return max((c["max_abs_diff"] for c in self.checks), default=0.0)

    def graph_max(self, graph: str) -> float:
        return max((c["max_abs_diff"] for c in self.checks if c["graph"] == graph), default=0.0)

    def to_dict(self) -> dict:
        return {
            "tolerance": self.tolerance,
            "max_abs_diff": self.max_abs_diff,
            "decoder_max_abs_diff": self.graph_max("decoder"),
            "encoder_max_abs_diff": self.graph_max("encoder"),
            "batch_sizes": list(PARITY_BATCH_SIZES),
            "far_latent": FAR_LATENT,
            "checks": self.checks,
        }

    def summary(self) -> str:
        lines = [f"{c['graph']:8s} {c['inputs']:28s} max |keras - onnx| {c['max_abs_diff']:.3g}" for c in self.checks]
        lines.append(f"parity passed: max abs difference {self.max_abs_diff:.3g} <= tolerance {self.tolerance:g}")
        return "\n".join(lines)


def compare(graph: str, inputs: str, expected: Outputs, got: Outputs, report: ParityReport) -> None:
    """Names, then shapes, then values; record the check or raise ParityError."""
    if list(got) != list(expected):
        raise ParityError(f"{graph}: onnx outputs {list(got)} differ from keras outputs {list(expected)}")
    for name in expected:
        if got[name].shape != expected[name].shape:
            raise ParityError(
                f"{graph} output {name!r} on {inputs}: onnx shape {got[name].shape}, keras {expected[name].shape}"
            )
    diff = max(float(np.max(np.abs(got[n].astype(np.float64) - expected[n]))) for n in expected)
    if not np.isfinite(diff) or diff > PARITY_TOLERANCE:
        raise ParityError(
            f"{graph} on {inputs}: max |keras - onnx| = {diff:.3g} exceeds the tolerance {PARITY_TOLERANCE:g}"
        )
    report.checks.append({"graph": graph, "inputs": inputs, "batch": len(next(iter(expected.values()))), "max_abs_diff": diff})


def parity_latents(latent_dim: int) -> dict[str, np.ndarray]:
    """Seeded N(0, I) batches of each size, and far-out latents with the corners of the cube."""
    rng = np.random.default_rng(PARITY_SEED)
    sets = {f"N(0, I) batch {b}": rng.standard_normal((b, latent_dim)).astype(np.float32) for b in PARITY_BATCH_SIZES}
    far = rng.uniform(-FAR_LATENT, FAR_LATENT, (64, latent_dim)).astype(np.float32)
    corners = np.array([[FAR_LATENT] * latent_dim, [-FAR_LATENT] * latent_dim], np.float32)
    sets[f"far, |z| <= {FAR_LATENT:g}, batch 66"] = np.concatenate([far, corners])
    return sets


def check_parity(
    keras_decoder: keras.Model,
    keras_encoder: keras.Model,
    onnx_decode: Callable[[np.ndarray], Outputs],
    onnx_encode: Callable[[np.ndarray], Outputs],
    latent_dim: int,
    encoder_outputs: tuple[str, ...] = ("z_mean", "z_log_var"),
) -> ParityReport:
    """Run every check; raise ParityError at the first failure, else return the report."""
    report = ParityReport()
    rng = np.random.default_rng(PARITY_SEED + 1)
    for label, z in parity_latents(latent_dim).items():
        images = keras_decoder(z, training=False).numpy()
        compare("decoder", label, {"image": images}, onnx_decode(z), report)
        if label.startswith("N(0, I)"):
            # Encoder inputs: decoded images (what real inputs look like) and uniform noise.
            noise = rng.uniform(0, 1, images.shape).astype(np.float32)
            for kind, x in (("decoded images", images), ("uniform noise", noise)):
                expected = dict(zip(encoder_outputs, (t.numpy() for t in keras_encoder(x, training=False)), strict=True))
                compare("encoder", f"{kind} batch {len(x)}", expected, onnx_encode(x), report)
    return report


def load_keras(path: Path) -> keras.Model:
    """Load a .keras file with safe_mode on: no arbitrary code from the file runs."""
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def check_model_folder(folder: Path) -> ParityReport:
    """Re-check a model folder's ONNX files, as the runtime runs them, against its Keras models."""
    from vae_gen import Generator

    folder = Path(folder)
    generator = Generator(folder)  # verifies model.json, checksums and graph signatures first
    card = generator.card
    if not card.keras_files:
        reference = card.parity.get("reference", "another model")
        raise ParityError(f"{folder}: has no Keras models; its model.json compares it with {reference} instead")
    for role, name in card.keras_files.items():
        if not (folder / name).is_file():
            raise ParityError(f"{folder / name}: missing; parity needs the Keras {role} the model came from")
    return check_parity(
        load_keras(folder / card.keras_files["decoder"]),
        load_keras(folder / card.keras_files["encoder"]),
        onnx_decode=lambda z: {card.decoder.outputs[0]: generator.decode(z)},
        onnx_encode=lambda x: dict(zip(card.encoder.outputs, generator.encode(x), strict=True)),
        latent_dim=card.latent_dim,
        encoder_outputs=card.encoder.outputs,
    )
