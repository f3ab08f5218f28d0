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

from ..core.checks import check_callbacks, check_integer
from ..errors import CancelEvent, InvalidArgumentError, raise_if_cancelled
from ..model.card import load_verified
from ..model.selftest import SelfTestResult, selftest
from ..model.sessions import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, ModelSessions, check_batch_size
from ..model.store import resolve_model
from .arrays import check_images, check_latents, check_noise
from .decoding import decode_batches, to_uint8
from .guidance import check_guidance
from .labels import Labels, LabelSpec, resolve
from .latents import block_ranges, check_seed, check_temperature
from .noise import Noise
from .request import Sampling, check_count, check_start

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

#: onnxruntime threads at most: more than cores only adds contention, and each thread reserves its stack.
MAX_THREADS = 256

__all__ = ["DEFAULT_BATCH_SIZE", "MAX_BATCH_SIZE", "MAX_THREADS", "Generator", "ProgressCallback", "SelfTestResult"]

ProgressCallback = Callable[[int, int], None]


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
        self._noise = Noise(self.sessions, bool(use_prior) and self.card.prior is not None)
        if not lazy:
            self.sessions.get("decoder")

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

    @property
    def use_prior(self) -> bool:
        """True when generation maps noise through the folder's prior graph (fixed when the Generator is made)."""
        return self._noise.prior is not None

    @property
    def noise_dim(self) -> int:
        """Width of the N(0, I) noise an image is drawn from: the prior's input, or latent_dim without one."""
        return self._noise.dim

    def noise(self, n: int, seed: int = 0, *, temperature: float = 1.0, start: int = 0) -> np.ndarray:
        """The N(0, I) noise of images [start, start + n) for `seed`, scaled by temperature: float32 [n, noise_dim].

        Without a prior in use the noise is the latents; with one, `to_latents` maps it.
        """
        n, start, seed = check_count(n), check_start(start), check_seed(seed)
        return self._noise.draw(seed, start, start + n, check_temperature(temperature))

    def to_latents(self, noise: np.ndarray) -> np.ndarray:
        """Noise float32 [n, noise_dim] -> latents float32 [n, latent_dim]: through the prior graph when one is in use."""
        return self._noise.to_latents(check_noise(noise, self.noise_dim, self.name))

    def latents(self, n: int, seed: int = 0, *, temperature: float = 1.0, start: int = 0) -> np.ndarray:
        """The latents of images [start, start + n) for `seed`: float32 [n, latent_dim] (the prior's, when in use)."""
        return self.to_latents(self.noise(n, seed, temperature=temperature, start=start))

    def labels(self, label: LabelSpec | None, n: int | None = None, start: int = 0) -> Labels | None:
        """`label` checked for this model (None without classes); a per-image sequence covers [start, start + n)."""
        return resolve(label, self.classes, self.name, n, start)

    def decode(
        self, z: np.ndarray, *, label: LabelSpec | None = None, guidance: float = 0.0, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> np.ndarray:
        """Decode latents float32 [n, latent_dim] to images float32 [n, H, W, C] in value_range.

        label and guidance: as for `generate` (a label per row, or one for all). One decoder call per
        `batch_size` latents (two with guidance): onnxruntime is no faster on larger batches here, and its
        buffers grow with them.
        """
        z = check_latents(z, self.latent_dim, self.name)
        batch_size = check_batch_size(batch_size)
        guidance = self.check_guidance(guidance)
        return decode_batches(self.sessions, z, self.labels(label, len(z)), 0, batch_size, guidance)

    def check_guidance(self, guidance: object) -> float:
        """`guidance` checked for this model: a number in [0, MAX_GUIDANCE], and 0 unless it has classes."""
        return check_guidance(guidance, self.classes, self.name)

    def decode_uint8(
        self, z: np.ndarray, *, label: LabelSpec | None = None, guidance: float = 0.0, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> np.ndarray:
        """Decode latents to uint8 images [n, H, W] (grayscale) or [n, H, W, C]; `label` and `guidance` as for `decode`."""
        return self.to_uint8(self.decode(z, label=label, guidance=guidance, batch_size=batch_size))

    def sampling(
        self, n: int, seed: int = 0, *, temperature: float = 1.0, start: int = 0, label: LabelSpec | None = None,
        guidance: float = 0.0, one_label: bool = False,
    ) -> Sampling:  # fmt: skip
        """The request `generate` would make, checked once (`one_label`: no per-image labels), for `stream`."""
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
            z = self._noise.to_latents(self._noise.draw(request.seed, aligned, hi, request.temperature))
            images = decode_batches(self.sessions, z, request.labels, aligned, batch_size, request.guidance)
            yield lo, self.to_uint8(images)[lo - aligned :]
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
        return self.images(request, batch_size, progress, cancel)

    def images(
        self, request: Sampling, batch_size: int = DEFAULT_BATCH_SIZE, progress: ProgressCallback | None = None,
        cancel: CancelEvent | None = None,
    ) -> np.ndarray:  # fmt: skip
        """The images of a request made by `sampling` (so checked already) as one uint8 array, as `generate`."""
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
        return to_uint8(images, self.card.value_range)

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
        array = check_images(images, self.card.image_shape)
        labels = self.labels(label, len(array))
        return self.sessions.encode(array, None if labels is None else labels.rows(0, len(array)))

    def selftest(self) -> SelfTestResult:
        """Decode the golden inputs of model.json and compare with the recorded outputs (vae_gen.model.selftest)."""
        return selftest(self.sessions)

    @property
    def uint8_shape(self) -> tuple[int, ...]:
        """The shape of one generated uint8 image: (H, W) for grayscale, (H, W, C) for colour."""
        h, w, c = self.card.image_shape
        return (h, w) if c == 1 else (h, w, c)
