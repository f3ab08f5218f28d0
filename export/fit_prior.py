"""`vae-gen fit-prior`: learn where a trained VAE's latents really lie, and ship it as a third graph.

A VAE's aggregate posterior does not fill N(0, I): some dimensions are
inactive, and prior samples that land between its clusters decode to blobs.
A post-hoc prior (Dai & Wipf 2019; Ghosh et al. 2020) is fitted on posterior
samples z ~ q(z|x) of the training images (sampled, not only the means, so
every dimension keeps its spread) and written as `prior.onnx`: noise
u ~ N(0, I) [batch, noise_dim] -> z [batch, latent_dim], deterministic. The
runtime draws u exactly as it draws latents today, so image i still depends
only on (seed, i). The decoder and encoder graphs are copied byte for byte:
reconstructions and the test -ELBO do not change.

Two kinds:
- "gmm": a full-covariance Gaussian mixture (export/prior_gmm.py); its
  first noise coordinate picks the component, and the temperature leaves it alone.
- "two-stage": a second VAE on the latents; its decoder's mean is the prior graph.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vae_gen.core.constants import (
    PRIOR_SEED,
    TWO_STAGE_BATCH,
    TWO_STAGE_EPOCHS,
    TWO_STAGE_GAMMA0,
    TWO_STAGE_HIDDEN,
)
from vae_gen.errors import InvalidArgumentError
from vae_gen.model.card import FORMAT_VERSION, sha256_of
from vae_gen.model.card_parts import OnnxFile, Prior
from vae_gen.output.atomic import atomic_folder
from vae_gen.sampling.generator import Generator
from vae_gen.training.settings import FASHION_MNIST, TrainSettings

from .convert import ExportError, check_graph
from .exporter import check_new_model_folder
from .golden import golden_noise
from .parity_checks import ParityError, ParityReport, compare, parity_latents

log = logging.getLogger(__name__)

KINDS = ("gmm", "two-stage")
PRIOR_FILE = "prior.onnx"
NOISE_INPUT, PRIOR_OUTPUT = "noise", "z"


def posterior_samples(generator: Generator, images: np.ndarray, seed: int) -> np.ndarray:
    """One z ~ q(z|x) per image (uint8 [n, H, W(, C)]), float32 [n, latent_dim], seeded."""
    from vae_gen.core.constants import EVAL_BATCH
    from vae_gen.train.data import to_float_images

    low, high = generator.value_range
    rng = np.random.default_rng(seed)
    out = np.empty((len(images), generator.latent_dim), np.float32)
    for lo in range(0, len(images), EVAL_BATCH):
        x = to_float_images(images[lo : lo + EVAL_BATCH]) * np.float32(high - low) + np.float32(low)
        z_mean, z_log_var = generator.encode(x)
        eps = rng.standard_normal(z_mean.shape).astype(np.float32)
        out[lo : lo + len(x)] = z_mean + np.exp(0.5 * z_log_var) * eps
    return out


def training_images(generator: Generator, data: str | None, data_dir: Path | None) -> tuple[np.ndarray, str]:
    """The images the prior is fitted on: the training images of `data`, or of the run the model came from."""
    from vae_gen.train.datasets import load_dataset

    if data is None:
        recorded = generator.card.training
        if not recorded:
            raise InvalidArgumentError(f"model {generator.name!r} was not trained here: say which images with --data")
        settings = TrainSettings.from_record(recorded, f"{generator.folder}/model.json")
    else:
        settings = TrainSettings(data=data)
    dataset = load_dataset(settings, data_dir)
    if dataset.image_shape != generator.image_shape:
        raise InvalidArgumentError(f"{settings.data}: images of shape {list(dataset.image_shape)}, the model takes "
                                   f"{list(generator.image_shape)}")  # fmt: skip
    return dataset.train_images, settings.data if settings.data != FASHION_MNIST else "Fashion-MNIST's training set"


def fit_prior(
    model: str | Path,
    out_dir: Path,
    *,
    kind: str = "gmm",
    components: int = 10,
    data: str | None = None,
    data_dir: Path | None = None,
    name: str | None = None,
    description: str | None = None,
    seed: int = PRIOR_SEED,
) -> Any:
    """Fit a prior of `kind` on `model`'s training posteriors and write the new model folder OUT_DIR; its card."""
    out_dir = Path(out_dir)
    check_new_model_folder(out_dir, "fit-prior")  # before the work, and again before writing
    if kind not in KINDS:
        raise InvalidArgumentError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    source = Generator(model, use_prior=False)
    if not source.has_encoder:
        raise InvalidArgumentError(f"model {source.name!r} has no encoder; fitting a prior needs its posteriors")
    if source.classes:
        raise InvalidArgumentError(f"model {source.name!r} is class-conditional; fit-prior fits unconditional models")
    images, what = training_images(source, data, data_dir)
    z = posterior_samples(source, images, seed)
    log.info("fitting a %s prior on %d posterior samples of %s", kind, len(z), what)
    if kind == "gmm":
        prior_graph, report, noise_dim, unscaled, fitted = _fit_gmm(z, components, seed)
    else:
        prior_graph, report, noise_dim, unscaled, fitted = _fit_two_stage(z, seed)
    log.info("%s", report.summary())
    fitted = {"data": what, "posterior_samples": len(z), "seed": seed} | fitted
    return add_prior(source, out_dir, kind, prior_graph, report, noise_dim, unscaled, fitted, name=name,
                     description=description)  # fmt: skip


def add_prior(
    source: Generator,
    out_dir: Path,
    kind: str,
    prior_graph: Any,
    report: ParityReport,
    noise_dim: int,
    unscaled: int,
    fitted: dict[str, Any],
    *,
    name: str | None = None,
    description: str | None = None,
) -> Any:
    """Write OUT_DIR: SOURCE's graphs byte for byte, `prior_graph` (an onnx.ModelProto that passed the parity gate,
    `report`) as prior.onnx, and the card with the prior and its golden checks."""
    import onnx
    import onnxruntime

    check_new_model_folder(out_dir, "fit-prior")
    check_graph(prior_graph, [NOISE_INPUT])
    card = source.card
    with atomic_folder(out_dir) as staging:
        for entry in (card.decoder, card.encoder):
            if entry is not None:
                shutil.copy2(source.folder / entry.file, staging / entry.file)
        for file in card.keras_files.values():
            if (source.folder / file).is_file():
                shutil.copy2(source.folder / file, staging / file)
        onnx.save(prior_graph, staging / PRIOR_FILE)
        session = onnxruntime.InferenceSession(str(staging / PRIOR_FILE), providers=["CPUExecutionProvider"])

        def run_prior(u: np.ndarray) -> np.ndarray:
            result: np.ndarray = session.run([PRIOR_OUTPUT], {NOISE_INPUT: u})[0]
            return result

        noise = golden_noise(noise_dim)
        golden_images = source.decode(run_prior(noise)).reshape(len(noise), -1)  # unconditional: fit_prior refuses others
        prior = Prior(
            graph=OnnxFile(PRIOR_FILE, sha256_of(staging / PRIOR_FILE), (NOISE_INPUT,), (PRIOR_OUTPUT,)),
            kind=kind, noise_dim=noise_dim, unscaled_noise=unscaled, fitted=fitted,
        )  # fmt: skip
        new_card = dataclasses.replace(
            card,
            format_version=FORMAT_VERSION,
            name=name or out_dir.name,
            description=description if description is not None else f"{card.description} With a {kind} prior.",
            prior=prior,
            parity=card.parity | {"prior": report.to_dict()},
            golden=dataclasses.replace(
                card.golden,
                noise=tuple(tuple(float(v) for v in row) for row in noise),
                noise_images=tuple(tuple(round(float(v), 7) for v in row) for row in golden_images),
            ),
        )
        new_card.save(staging)
        check = Generator(staging).selftest()
        if not check.passed:
            raise ParityError(f"the new folder's golden self-test failed: max difference {check.max_abs_diff:.3g}")
    return new_card


def prior_parity(reference: Callable[[np.ndarray], np.ndarray], proto: Any, noise_dim: int) -> ParityReport:
    """The prior graph (in onnxruntime) against its Keras source at the parity batch sizes and on far-out noise."""
    import onnxruntime

    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    report = ParityReport()
    for what, u in parity_latents(noise_dim).items():
        got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {NOISE_INPUT: u}), strict=True))
        compare("prior", what, {PRIOR_OUTPUT: reference(u)}, got, report)
    return report


def _fit_gmm(z: np.ndarray, components: int, seed: int) -> tuple[Any, ParityReport, int, int, dict]:
    from .prior_gmm import UNSCALED_NOISE, fit_gmm, parity

    mixture = fit_gmm(z, components, seed)
    proto = mixture.to_onnx()
    fitted = mixture.fitted | {"weights": [round(float(w), 6) for w in mixture.weights]}
    return proto, parity(mixture, proto), mixture.noise_dim, UNSCALED_NOISE, fitted


def _fit_two_stage(z: np.ndarray, seed: int) -> tuple[Any, ParityReport, int, int, dict]:
    """Dai & Wipf's second stage: a VAE on the latents, its observation N(decoder(u), gamma I) with gamma learned."""
    import keras
    import tensorflow as tf

    from .convert import to_onnx

    keras.utils.set_random_seed(seed)
    d = z.shape[1]
    hidden = TWO_STAGE_HIDDEN
    x_in = keras.Input((d,), name="z")
    h = x_in
    for width in hidden:
        h = keras.layers.Dense(width, activation="relu")(h)
    encoder = keras.Model(x_in, [keras.layers.Dense(d)(h), keras.layers.Dense(d)(h)], name="stage2_encoder")
    u_in = keras.Input((d,), name=NOISE_INPUT)
    g = u_in
    for width in hidden:
        g = keras.layers.Dense(width, activation="relu")(g)
    decoder = keras.Model(u_in, keras.layers.Dense(d)(g), name="stage2_decoder")
    # gamma starts small: at gamma = 1 the second stage's best first move is to ignore its latent (the latents are
    # about N(0, 1) per dimension already), a collapse it does not leave; Dai & Wipf's gamma falls towards 0.
    log_gamma = tf.Variable(float(np.log(TWO_STAGE_GAMMA0)), name="log_gamma")
    optimizer = keras.optimizers.Adam(1e-3)
    weights = [*encoder.trainable_weights, *decoder.trainable_weights, log_gamma]
    rng = np.random.default_rng(seed)

    @tf.function
    def step(batch: tf.Tensor, eps: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            mean, log_var = encoder(batch, training=True)
            decoded = decoder(mean + tf.exp(0.5 * log_var) * eps, training=True)
            nll = tf.reduce_sum(tf.square(batch - decoded), axis=1) / (2 * tf.exp(log_gamma)) + 0.5 * d * log_gamma
            kl = -0.5 * tf.reduce_sum(1 + log_var - tf.square(mean) - tf.exp(log_var), axis=1)
            loss = tf.reduce_mean(nll + kl)
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights, strict=True))
        return loss

    for epoch in range(TWO_STAGE_EPOCHS):
        order = rng.permutation(len(z))
        losses = [
            float(step(tf.constant(z[order[lo : lo + TWO_STAGE_BATCH]]),
                       tf.constant(rng.standard_normal((len(order[lo : lo + TWO_STAGE_BATCH]), d)).astype(np.float32))))
            for lo in range(0, len(z), TWO_STAGE_BATCH)
        ]  # fmt: skip
        log.info("second stage epoch %d/%d: loss %.3f, gamma %.4f", epoch + 1, TWO_STAGE_EPOCHS, np.mean(losses),
                 float(tf.exp(log_gamma)))  # fmt: skip

    def reference(u: np.ndarray) -> np.ndarray:
        return np.asarray(decoder(u, training=False), np.float32)

    proto = to_onnx(lambda u: [decoder(u, training=False)], [(NOISE_INPUT, (d,))], [PRIOR_OUTPUT])
    fitted = {"hidden": list(hidden), "epochs": TWO_STAGE_EPOCHS, "batch_size": TWO_STAGE_BATCH,
              "initial_gamma": TWO_STAGE_GAMMA0, "gamma": float(tf.exp(log_gamma))}  # fmt: skip
    return proto, prior_parity(reference, proto, d), d, 0, fitted


__all__ = ["KINDS", "ExportError", "fit_prior"]
