"""Generator: one loaded model folder, turning seeds and latents into images.

Loading validates the folder before any ONNX file is handed to onnxruntime:
model.json must be complete, and each file's sha256 must match it. The
onnxruntime session is then checked against the card (names, latent size,
image shape). All randomness lives here in numpy, never inside a graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.checks import check_callbacks, check_integer, numeric_array
from ..errors import CancelEvent, InvalidArgumentError, raise_if_cancelled
from ..model.card import load_verified
from ..model.selftest import SelfTestResult, selftest
from ..model.sessions import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, ModelSessions
from ..model.store import resolve_model
from .guidance import check_guidance, guided, uniform_rows
from .labels import Labels, LabelSpec, resolve
from .latents import block_ranges, check_seed, check_temperature, sample_latents
from .request import Sampling, check_count, check_start

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

#: onnxruntime threads at most: more than cores only adds contention, and each thread reserves its stack.
MAX_THREADS = 256

__all__ = ["DEFAULT_BATCH_SIZE", "MAX_BATCH_SIZE", "MAX_THREADS", "Generator", "ProgressCallback", "SelfTestResult"]

ProgressCallback = Callable[[int, int], None]


def as_float32(array: np.ndarray) -> np.ndarray:
    """A contiguous float32 copy (or view); values beyond float32 become inf quietly, for the caller's finiteness
    check to refuse in one line (numpy would also print a RuntimeWarning)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.ascontiguousarray(array, dtype=np.float32)


class Generator:
    """Decode latents of one model folder into images, on CPU by default.

    Load once, call many times; every method may be called from several
    threads at once (onnxruntime's `run` is thread-safe, and the lazy
    session creation is guarded by a lock).

    Args:
        model: a shipped model name, a model folder path, or None for the default.
        threads: onnxruntime intra-op threads; None: one per CPU this process may use (its affinity), or
            onnxruntime's choice where that is every CPU of the machine.
        providers: onnxruntime execution providers, in order of preference.
            Each must be in `onnxruntime.get_available_providers()`.
        lazy: create the onnxruntime session on first use instead of now.
        use_prior: for a folder with a prior graph, map N(0, I) noise through it
            to latents (the default); False draws latents from N(0, I) directly,
            as models without a prior always do.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        threads: int | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        lazy: bool = False,
        use_prior: bool = True,
    ) -> None:
        if threads is not None:
            threads = check_integer(threads, 1, MAX_THREADS, "threads")
        self.folder = resolve_model(model)
        self.card = load_verified(self.folder)
        # One onnxruntime session per graph, opened and checked on first use (now for the decoder, unless lazy).
        self.sessions = ModelSessions(self.folder, self.card, threads, providers)
        self._use_prior = bool(use_prior) and self.card.prior is not None
        if not lazy:
            self.sessions.get("decoder")

    # -- properties -----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def latent_dim(self) -> int:
        return self.card.latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of the decoder's output and the encoder's input; channels is 1 or 3."""
        return self.card.image_shape

    @property
    def value_range(self) -> tuple[float, float]:
        """(low, high): the decoder's output and the encoder's input, as floats, span this range."""
        return self.card.value_range

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names of a class-conditional model, in label order; () for an unconditional one.

        A conditional model needs a `label` on every call that decodes or
        encodes (see vae_gen.sampling.labels for what a label may be).
        """
        return self.card.classes

    @property
    def has_encoder(self) -> bool:
        """False for a decoder-only model: it generates, but `encode` refuses."""
        return self.card.encoder is not None

    # -- generation -----------------------------------------------------------------

    @property
    def use_prior(self) -> bool:
        """True when generation maps noise through the folder's prior graph (fixed when the Generator is made)."""
        return self._use_prior

    @property
    def noise_dim(self) -> int:
        """Width of the N(0, I) noise an image is drawn from: the prior's input, or latent_dim without one."""
        return self.card.prior.noise_dim if self.use_prior and self.card.prior is not None else self.latent_dim

    def noise(self, n: int, seed: int = 0, *, temperature: float = 1.0, start: int = 0) -> np.ndarray:
        """The N(0, I) noise of images [start, start + n) for `seed`, scaled by temperature: float32 [n, noise_dim].

        Without a prior in use the noise is the latents; with one, `to_latents` maps it.
        """
        n, start, seed = check_count(n), check_start(start), check_seed(seed)
        return self._tempered(sample_latents(seed, start, start + n, self.noise_dim), check_temperature(temperature))

    def to_latents(self, noise: np.ndarray) -> np.ndarray:
        """Noise float32 [n, noise_dim] -> latents float32 [n, latent_dim]: through the prior graph when one is in use."""
        array = numeric_array(noise, "noise")
        if array.ndim != 2 or array.shape[1] != self.noise_dim or not np.issubdtype(array.dtype, np.floating):
            raise InvalidArgumentError(f"noise must be floats of shape [n, {self.noise_dim}] for model {self.name!r}, "
                                       f"got {array.dtype} {list(array.shape)}")  # fmt: skip
        array = as_float32(array)
        if not np.all(np.isfinite(array)):
            raise InvalidArgumentError("noise must be finite float32 values: found NaN, inf or a value beyond float32")
        return self.sessions.prior(array) if self.use_prior else array

    def latents(self, n: int, seed: int = 0, *, temperature: float = 1.0, start: int = 0) -> np.ndarray:
        """The latents of images [start, start + n) for `seed`: float32 [n, latent_dim] (the prior's, when in use)."""
        return self.to_latents(self.noise(n, seed, temperature=temperature, start=start))

    def _tempered(self, noise: np.ndarray, temperature: float) -> np.ndarray:
        """Noise scaled by the temperature, but for a prior's unscaled leading coordinates (a mixture's component)."""
        if temperature == 1.0:
            return noise
        keep = self.card.prior.unscaled_noise if self.use_prior and self.card.prior is not None else 0
        if not keep:
            scaled: np.ndarray = noise * np.float32(temperature)  # as sample_latents scales: the bytes of before
            return scaled
        out: np.ndarray = noise.copy()
        out[:, keep:] *= np.float32(temperature)
        return out

    def labels(self, label: LabelSpec | None, n: int | None = None, start: int = 0) -> Labels | None:
        """`label` checked against this model's classes (see vae_gen.sampling.labels); None for an unconditional model.

        n: the images a per-image sequence must cover; start: the index of its first image.
        """
        return resolve(label, self.classes, self.name, n, start)

    def decode(
        self, z: np.ndarray, *, label: LabelSpec | None = None, guidance: float = 0.0, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> np.ndarray:
        """Decode latents float32 [n, latent_dim] to images float32 [n, H, W, C] in value_range.

        label: required for a conditional model, refused for others: a class
        name or index, "all" (row i of class i mod K), a {name: weight} blend,
        or one of those per row. guidance: a conditional model's class
        guidance, >= 0 (see vae_gen.sampling.guidance; 0, the default, is the decoder's
        own output). One decoder call per `batch_size` latents (two with
        guidance): onnxruntime is no faster on larger batches here, and its
        buffers grow with them.
        """
        z = self._check_latents(z)
        batch_size = check_batch_size(batch_size)
        guidance = self.check_guidance(guidance)
        return self._decode(z, self.labels(label, len(z)), 0, batch_size, guidance)

    def check_guidance(self, guidance: object) -> float:
        """`guidance` checked for this model: a number in [0, MAX_GUIDANCE], and 0 unless it has classes."""
        return check_guidance(guidance, self.classes, self.name)

    def _decode(self, z: np.ndarray, labels: Labels | None, first: int, batch_size: int, guidance: float = 0.0) -> np.ndarray:
        """Decode checked latents of images first..first+len(z)-1, labelled by `labels`, with checked `guidance`."""
        decode = self.sessions.decode

        def run(lo: int, hi: int) -> np.ndarray:
            if labels is None:
                return decode(z[lo:hi], None)
            conditioned = decode(z[lo:hi], labels.rows(first + lo, first + hi))
            if not guidance:
                return conditioned
            unconditioned = decode(z[lo:hi], uniform_rows(hi - lo, len(labels.classes)))
            return guided(conditioned, unconditioned, guidance, self.card.value_range)

        if len(z) <= batch_size:
            return run(0, len(z))
        out = np.empty((len(z), *self.card.image_shape), np.float32)
        for lo in range(0, len(z), batch_size):
            out[lo : lo + batch_size] = run(lo, min(lo + batch_size, len(z)))
        return out

    def decode_uint8(
        self, z: np.ndarray, *, label: LabelSpec | None = None, guidance: float = 0.0, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> np.ndarray:
        """Decode latents to uint8 images [n, H, W] (grayscale) or [n, H, W, C]; `label` and `guidance` as for `decode`."""
        return self.to_uint8(self.decode(z, label=label, guidance=guidance, batch_size=batch_size))

    def sampling(
        self, n: int, seed: int = 0, *, temperature: float = 1.0, start: int = 0, label: LabelSpec | None = None,
        guidance: float = 0.0, one_label: bool = False,
    ) -> Sampling:  # fmt: skip
        """Images [start, start + n) of `seed` as one request checked for this model (see `generate` for the
        arguments; `one_label` refuses per-image label sequences): what `stream` takes."""
        return Sampling.checked(self.classes, self.name, n, seed=seed, start=start, temperature=temperature,
                                label=label, guidance=guidance, one_label=one_label)  # fmt: skip

    def iter_batches(
        self,
        n: int,
        seed: int = 0,
        *,
        temperature: float = 1.0,
        start: int = 0,
        label: LabelSpec | None = None,
        guidance: float = 0.0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: ProgressCallback | None = None,
        cancel: CancelEvent | None = None,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Stream images [start, start + n) as (first_index, uint8 batch) pairs, one decoder call per batch.

        The arguments are checked now, before the first batch; see `stream`.
        """
        request = self.sampling(n, seed, temperature=temperature, start=start, label=label, guidance=guidance)
        batch_size = check_batch_size(batch_size)
        check_callbacks(progress, cancel)
        return self.stream(request, batch_size, progress, cancel)

    def stream(
        self, request: Sampling, batch_size: int, progress: ProgressCallback | None = None,
        cancel: CancelEvent | None = None,
    ) -> Iterator[tuple[int, np.ndarray]]:  # fmt: skip
        """The images of a request made by `sampling` (so checked already), as (first_index, uint8 batch) pairs.

        Batches break at multiples of `batch_size` counted from index 0, and
        a first batch that starts mid-way is decoded whole and trimmed: so an
        image is decoded in the same batch however a job is split or resumed
        (with the same batch size), even on a backend whose results depended
        on the batch. Memory stays bounded whatever n is. Once `cancel` is
        set, the next batch raises `Cancelled` instead.
        """
        done = 0
        for lo, hi in block_ranges(request.start, request.stop, batch_size):
            raise_if_cancelled(cancel)
            aligned = lo - lo % batch_size
            noise = self._tempered(sample_latents(request.seed, aligned, hi, self.noise_dim), request.temperature)
            z = self.sessions.prior(noise) if self.use_prior else noise
            yield lo, self.to_uint8(self._decode(z, request.labels, aligned, batch_size, request.guidance))[lo - aligned :]
            done += hi - lo
            if progress is not None:
                progress(done, request.count)

    def generate(
        self,
        n: int,
        seed: int = 0,
        *,
        temperature: float = 1.0,
        start: int = 0,
        label: LabelSpec | None = None,
        guidance: float = 0.0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: ProgressCallback | None = None,
        cancel: CancelEvent | None = None,
    ) -> np.ndarray:
        """Images [start, start + n) for `seed`: uint8 [n, H, W] (or [n, H, W, C] for colour), 0 black to 255 white.

        label: required for a conditional model (see `classes`), refused for
        others: a class name or index, "all" (image i of class i mod K), a
        {name: weight} blend, or a sequence of n of those, one per image.
        guidance: a conditional model's class guidance, >= 0: how far each
        image is pushed from the all-class average toward its class (see
        vae_gen.sampling.guidance; 0, the default, decodes once per image).
        Image i depends only on (seed, i, temperature, its label, guidance).

        `progress(done, n)` is called after each batch; setting `cancel` (any
        event, such as threading.Event) from another thread stops at the next
        batch with `Cancelled`.
        """
        request = self.sampling(n, seed, temperature=temperature, start=start, label=label, guidance=guidance)
        batch_size = check_batch_size(batch_size)
        check_callbacks(progress, cancel)
        out = np.empty((request.count, *self.uint8_shape), np.uint8)
        for lo, batch in self.stream(request, batch_size, progress, cancel):
            out[lo - request.start : lo - request.start + len(batch)] = batch
        return out

    def generate_pil(
        self, n: int, seed: int = 0, *, temperature: float = 1.0, start: int = 0, label: LabelSpec | None = None,
        guidance: float = 0.0,
    ) -> list[PILImage]:  # fmt: skip
        """The same images as `generate`, as PIL images: mode "L" for grayscale models, "RGB" for colour ones."""
        from PIL import Image

        images = self.generate(n, seed, temperature=temperature, start=start, label=label, guidance=guidance)
        return [Image.fromarray(image) for image in images]

    def to_uint8(self, images: np.ndarray) -> np.ndarray:
        """Map decoder output in value_range to uint8 (round half to even, clip), dropping a single channel."""
        low, high = self.card.value_range
        scaled = (images - np.float32(low)) * np.float32(255.0 / (high - low))
        out: np.ndarray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        return out[..., 0] if out.shape[-1] == 1 else out

    def encode(self, images: np.ndarray, *, label: LabelSpec | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Encode images float [n, H, W, C] (or [n, H, W] when C is 1) in value_range to (z_mean, z_log_var).

        Both are float32 [n, latent_dim]: the posterior N(z_mean, exp(z_log_var)),
        given each image's label for a conditional model (`label` as for `decode`).
        A decoder-only model (`has_encoder` False) raises InvalidArgumentError.
        """
        entry = self.card.encoder
        if entry is None:
            raise InvalidArgumentError(
                f"model {self.name!r} has no encoder (it was exported from a decoder alone), so it cannot encode images"
            )
        array = numeric_array(images, "images")
        if array.ndim == 3 and self.card.image_shape[2] == 1:
            array = array[..., None]
        if array.ndim != 4 or tuple(array.shape[1:]) != self.card.image_shape:
            raise InvalidArgumentError(
                f"images must have shape [n, {', '.join(map(str, self.card.image_shape))}], got {list(array.shape)}"
            )
        if not np.issubdtype(array.dtype, np.floating):
            raise InvalidArgumentError(f"images must be floating point values, got dtype {array.dtype}")
        array = as_float32(array)
        if not np.all(np.isfinite(array)):
            raise InvalidArgumentError("images must be finite float32 values: found NaN, inf or a value beyond float32")
        labels = self.labels(label, len(array))
        return self.sessions.encode(array, None if labels is None else labels.rows(0, len(array)))

    # -- self test ------------------------------------------------------------------

    def selftest(self) -> SelfTestResult:
        """Decode the golden inputs of model.json and compare with the recorded outputs (vae_gen.model.selftest)."""
        return selftest(self.sessions)

    # -- internals ------------------------------------------------------------------

    @property
    def uint8_shape(self) -> tuple[int, ...]:
        """The shape of one generated uint8 image: (H, W) for grayscale, (H, W, C) for colour."""
        h, w, c = self.card.image_shape
        return (h, w) if c == 1 else (h, w, c)

    def _check_latents(self, z: object) -> np.ndarray:
        array = numeric_array(z, "latents")
        if array.ndim != 2 or array.shape[1] != self.latent_dim:
            raise InvalidArgumentError(
                f"latents must have shape [n, {self.latent_dim}] for model {self.name!r}, got {list(array.shape)}"
            )
        if not np.issubdtype(array.dtype, np.floating):
            raise InvalidArgumentError(f"latents must be floating point, got dtype {array.dtype}")
        array = as_float32(array)
        if not np.all(np.isfinite(array)):
            raise InvalidArgumentError("latents must be finite float32 values: found NaN, inf or a value beyond float32")
        return array


def check_batch_size(batch_size: object) -> int:
    return check_integer(batch_size, 1, MAX_BATCH_SIZE, "batch size")
