"""Pictures of a training run, written into its folder (matplotlib, the train extra).

report-curves.png           train and test reconstruction, KL and -ELBO per epoch
report-samples.png          decoded N(0, I) samples (a conditional model: row r of class r mod K)
report-reconstructions.png  test images (odd rows) above their reconstructions (even rows)
report-latent.png           test z_mean coloured by class: the plane itself for a 2-D
                            latent, else its first two principal components
report-manifold.png         (2-D latent only) the decoded grid over [-2, 2]^2
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np

from vae_gen.core.constants import REPORT_SEED
from vae_gen.output.images import grid
from vae_gen.sampling.latent_paths import manifold
from vae_gen.training.settings import TrainSettings

from .data import to_float_images
from .datasets import Dataset, load_dataset

SAMPLES = 100
RECONSTRUCTIONS = 16
SCATTER_IMAGES = 5000


def _save_picture(images_uint8: np.ndarray, path: Path, columns: int, scale: int = 3) -> None:
    grid(images_uint8, columns=columns, scale=scale).save(path)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Decoder output in [0, 1] -> uint8 pictures, [n, H, W] for grayscale, [n, H, W, 3] for RGB."""
    pixels = np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)
    return pixels[..., 0] if pixels.shape[-1] == 1 else pixels


def write_report(run_dir: Path, data: Dataset | None = None, data_dir: Path | None = None) -> list[Path]:
    """Write the report pictures of `run_dir`; returns their paths.

    `data` is the run's dataset; None reads it again as the run's settings.json says.
    """
    run_dir = Path(run_dir)
    history = json.loads((run_dir / "history.json").read_text())
    encoder = keras.saving.load_model(run_dir / "encoder.keras", compile=False, safe_mode=True)
    decoder = keras.saving.load_model(run_dir / "decoder.keras", compile=False, safe_mode=True)
    latent_dim = int(decoder.inputs[0].shape[-1])
    # A conditional model's networks take a one-hot label as their second input.
    classes = int(decoder.inputs[1].shape[-1]) if len(decoder.inputs) == 2 else 0

    def given(x: np.ndarray, labels: np.ndarray) -> object:
        return x if not classes else [x, np.eye(classes, dtype=np.float32)[labels]]
    if data is None:
        recorded = json.loads((run_dir / "settings.json").read_text(encoding="utf-8"))
        data = load_dataset(TrainSettings.from_record(recorded, str(run_dir / "settings.json")), data_dir)
    x_test = data.test_images  # uint8; converted to floats a slice at a time
    rng = np.random.default_rng(REPORT_SEED)
    written = []

    # Curves.
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    epochs = [row["epoch"] for row in history]
    for axis, key, title in zip(axes, ("neg_elbo", "reconstruction", "kl"), ("-ELBO", "reconstruction", "KL"), strict=True):
        axis.plot(epochs, [row[key] for row in history], label="train")
        axis.plot(epochs, [row[f"val_{key}"] for row in history], label="test")
        axis.set_title(f"{title} (nats per image)")
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    written.append(run_dir / "report-curves.png")
    figure.savefig(written[-1], dpi=100)
    plt.close(figure)

    # Samples from the prior.
    z = rng.standard_normal((SAMPLES, latent_dim)).astype(np.float32)
    row_classes = (np.arange(SAMPLES) // 10) % max(classes, 1)
    written.append(run_dir / "report-samples.png")
    _save_picture(_to_uint8(decoder(given(z, row_classes), training=False).numpy()), written[-1], columns=10)

    # Test images over their reconstructions (from the posterior mean).
    picks = rng.choice(len(x_test), min(RECONSTRUCTIONS, len(x_test)), replace=False)
    originals = to_float_images(x_test[picks])
    picked_labels = data.test_labels[picks]
    z_mean, _ = (t.numpy() for t in encoder(given(originals, picked_labels), training=False))
    reconstructed = decoder(given(z_mean, picked_labels), training=False).numpy()
    rows = []
    for half in range(0, len(picks), 8):
        rows += [_to_uint8(originals[half : half + 8]), _to_uint8(reconstructed[half : half + 8])]
    written.append(run_dir / "report-reconstructions.png")
    _save_picture(np.concatenate(rows), written[-1], columns=8)

    # Latent scatter by class.
    subset = rng.choice(len(x_test), min(SCATTER_IMAGES, len(x_test)), replace=False)
    z_mean = np.concatenate([
        encoder(given(to_float_images(x_test[subset[i : i + 500]]), data.test_labels[subset[i : i + 500]]),
                training=False)[0].numpy()
        for i in range(0, len(subset), 500)
    ])  # fmt: skip
    if latent_dim == 2:
        points, labels = z_mean, ("z[0]", "z[1]")
    else:
        centred = z_mean - z_mean.mean(axis=0)
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        points, labels = centred @ components[:2].T, ("principal component 1", "principal component 2")
        # Fewer test images than two give fewer components: the missing axis is 0.
        points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
    figure, axis = plt.subplots(figsize=(7.5, 6))
    shown = len(data.class_names)
    if shown:
        colours = "tab10" if shown <= 10 else "tab20" if shown <= 20 else "viridis"
        scatter = axis.scatter(points[:, 0], points[:, 1], c=data.test_labels[subset], cmap=colours, s=4, alpha=0.7,
                               vmin=-0.5, vmax=shown - 0.5)  # fmt: skip
        colorbar = figure.colorbar(scatter, ticks=range(shown))
        colorbar.ax.set_yticklabels(data.class_names)
    else:  # an unlabelled folder: one colour
        axis.scatter(points[:, 0], points[:, 1], s=4, alpha=0.7)
    axis.set_xlabel(labels[0])
    axis.set_ylabel(labels[1])
    axis.set_title(f"test z_mean, {len(subset)} images, latent {latent_dim}")
    figure.tight_layout()
    written.append(run_dir / "report-latent.png")
    figure.savefig(written[-1], dpi=100)
    plt.close(figure)

    if latent_dim == 2:
        size = 20
        written.append(run_dir / "report-manifold.png")
        z = manifold(2, size, 2.0)
        _save_picture(
            _to_uint8(decoder(given(z, np.zeros(len(z), np.int64)), training=False).numpy()), written[-1], columns=size, scale=2
        )
    return written
