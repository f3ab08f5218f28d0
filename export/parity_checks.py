"""The parity gate's rules: names, then shapes, then values within PARITY_TOLERANCE, on the gate's latents.

Shared by the Keras graphs (export.parity) and the graphs built without
Keras (the Gaussian-mixture prior, export.prior_gmm, checked against its
numpy source); TensorFlow-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vae_gen.core.constants import FAR_LATENT, PARITY_BATCH_SIZES, PARITY_SEED, PARITY_TOLERANCE
from vae_gen.errors import VaeGenError

Outputs = dict[str, np.ndarray]


class ParityError(VaeGenError):
    """A graph in onnxruntime and its source (the Keras model, or a numpy reference) disagree beyond PARITY_TOLERANCE
    (or in names or shapes)."""


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
        lines = [
            f"{c['graph']:8s} {c['inputs']:28s} max |{c.get('reference', 'keras')} - onnx| {c['max_abs_diff']:.3g}"
            for c in self.checks
        ]
        lines.append(f"parity passed: max abs difference {self.max_abs_diff:.3g} <= tolerance {self.tolerance:g}")
        return "\n".join(lines)


def compare(graph: str, inputs: str, expected: Outputs, got: Outputs, report: ParityReport, reference: str = "keras") -> None:
    """Names, then shapes, then values; record the check or raise ParityError. `expected` comes from `reference`
    (the Keras model, or the numpy source of a graph built without one), `got` from onnxruntime."""
    if list(got) != list(expected):
        raise ParityError(f"{graph}: onnx outputs {list(got)} differ from {reference} outputs {list(expected)}")
    for name in expected:
        if got[name].shape != expected[name].shape:
            raise ParityError(
                f"{graph} output {name!r} on {inputs}: onnx shape {got[name].shape}, {reference} {expected[name].shape}"
            )
    diff = max(float(np.max(np.abs(got[n].astype(np.float64) - expected[n]))) for n in expected)
    if not np.isfinite(diff) or diff > PARITY_TOLERANCE:
        raise ParityError(
            f"{graph} on {inputs}: max |{reference} - onnx| = {diff:.3g} exceeds the tolerance {PARITY_TOLERANCE:g}"
        )
    check = {"graph": graph, "inputs": inputs, "batch": len(next(iter(expected.values()))), "max_abs_diff": diff}
    if reference != "keras":  # the cards' checks name their reference only where it is not the Keras model
        check["reference"] = reference
    report.checks.append(check)


def parity_latents(latent_dim: int) -> dict[str, np.ndarray]:
    """Seeded N(0, I) batches of each size, and far-out latents with the corners of the cube."""
    rng = np.random.default_rng(PARITY_SEED)
    sets = {f"N(0, I) batch {b}": rng.standard_normal((b, latent_dim)).astype(np.float32) for b in PARITY_BATCH_SIZES}
    far = rng.uniform(-FAR_LATENT, FAR_LATENT, (64, latent_dim)).astype(np.float32)
    corners = np.array([[FAR_LATENT] * latent_dim, [-FAR_LATENT] * latent_dim], np.float32)
    sets[f"far, |z| <= {FAR_LATENT:g}, batch 66"] = np.concatenate([far, corners])
    return sets
