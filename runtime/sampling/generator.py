"""Generator: one loaded model folder, turning seeds and latents into images.

Loading validates the folder before any ONNX file is handed to onnxruntime:
model.json must be complete, and each file's sha256 must match it. The
onnxruntime session is then checked against the card (names, latent size,
image shape). All randomness lives here in numpy, never inside a graph.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.checks import check_callbacks, check_integer, numeric_array
from ..core.memory import GuardedSession, import_onnxruntime, is_out_of_memory, out_of_memory
from ..errors import (
    CancelEvent,
    InvalidArgumentError,
    ModelIntegrityError,
    raise_if_cancelled,
)
from ..model.card import GoldenCheck, OnnxFile, load_verified, verified_bytes
from ..model.engine import CROSS_ENGINE
from ..model.store import resolve_model
from .guidance import check_guidance, guided, uniform_rows
from .labels import Labels, LabelSpec, resolve
from .latents import block_ranges, check_seed, check_temperature, sample_latents

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

log = logging.getLogger(__name__)

#: The upper bound of counts and indices; sizes beyond it are surely mistakes.
MAX_IMAGES = 2**40
#: Images decoded per onnxruntime call unless the caller says otherwise. onnxruntime's
#: buffers grow with the batch while its speed does not (residual32 decoder, 2 cores,
#: `python benchmarks/batch_size.py`): 2,412 / 2,334 / 2,354 / 2,145 images/s at 16 / 32 /
#: 64 / 1024, peaking at 82 / 94 / 116 / 850 MB RSS over 10,000 images. 32 keeps vae-gen
#: under 100 MB and costs the tiny dense2 decoder less than 16 would.
DEFAULT_BATCH_SIZE = 32
#: Larger batches only cost memory: onnxruntime's activations take about 0.42 MB per image of a batch with the
#: default model, 1.8 GB at 4,096 (measured: /usr/bin/time -f %M vae-gen sample -n 4096 --batch-size 4096 --out b.npy).
MAX_BATCH_SIZE = 4_096
#: onnxruntime threads at most: more than cores only adds contention, and each thread reserves its stack.
MAX_THREADS = 256

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class SelfTestResult:
    passed: bool
    max_abs_diff: float
    tolerance: float
    checks: int


def as_float32(array: np.ndarray) -> np.ndarray:
    """A contiguous float32 copy (or view); values beyond float32 become inf quietly, for the caller's finiteness
    check to refuse in one line (numpy would also print a RuntimeWarning)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.ascontiguousarray(array, dtype=np.float32)


def affinity_threads() -> int | None:
    """The CPUs this process may run on, when fewer than the machine has (`taskset -c 0`, a container's cpuset);
    else None: onnxruntime's own choice. onnxruntime sizes and pins its pool by the machine's cores, so under a
    narrower affinity its threads would escape to cores the user kept free."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return None
    return allowed if allowed < (os.cpu_count() or allowed) else None


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
        self._threads = threads
        self._providers = tuple(providers)
        self._check_providers()
        # Created on first use (or now, unless lazy); onnxruntime loads only then.
        # One onnxruntime session per graph ("decoder", "encoder", "prior"), opened and checked on first use.
        self._sessions: dict[str, GuardedSession] = {}
        self._use_prior = bool(use_prior) and self.card.prior is not None
        self._lock = threading.Lock()
        if not lazy:
            self._session("decoder")

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
        n, start = check_count(n), _check_start(start)
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
        if not self.use_prior:
            return array
        assert self.card.prior is not None
        graph = self.card.prior.graph
        z: np.ndarray = self._session("prior").run([graph.outputs[0]], {graph.inputs[0]: array})[0]
        return z

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
        session = self._session("decoder")
        names, inputs = [self.card.decoder.outputs[0]], self.card.decoder.inputs

        def run(lo: int, hi: int) -> np.ndarray:
            if labels is None:
                return session.run(names, {inputs[0]: z[lo:hi]})[0]  # type: ignore[no-any-return]
            conditioned = session.run(names, {inputs[0]: z[lo:hi], inputs[1]: labels.rows(first + lo, first + hi)})[0]
            if not guidance:
                return conditioned  # type: ignore[no-any-return]
            unconditioned = session.run(names, {inputs[0]: z[lo:hi], inputs[1]: uniform_rows(hi - lo, len(labels.classes))})[0]
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

        Batches break at multiples of `batch_size` counted from index 0, and
        a first batch that starts mid-way is decoded whole and trimmed: so an
        image is decoded in the same batch however a job is split or resumed
        (with the same batch size), even on a backend whose results depended
        on the batch. Memory stays bounded whatever n is. Once `cancel` is
        set, the next batch raises `Cancelled` instead.
        """
        n, start = check_count(n), _check_start(start)
        seed, batch_size = check_seed(seed), check_batch_size(batch_size)
        check_callbacks(progress, cancel)
        labels = self.labels(label, n, start)
        temperature, guidance = check_temperature(temperature), self.check_guidance(guidance)
        done = 0
        for lo, hi in block_ranges(start, start + n, batch_size):
            raise_if_cancelled(cancel)
            aligned = lo - lo % batch_size
            z = self.to_latents(self._tempered(sample_latents(seed, aligned, hi, self.noise_dim), temperature))
            yield lo, self.to_uint8(self._decode(z, labels, aligned, batch_size, guidance))[lo - aligned :]
            done += hi - lo
            if progress is not None:
                progress(done, n)

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
        n = check_count(n)
        out = np.empty((n, *self.uint8_shape), np.uint8)
        batches = self.iter_batches(
            n, seed, temperature=temperature, start=start, label=label, guidance=guidance, batch_size=batch_size,
            progress=progress, cancel=cancel,
        )  # fmt: skip
        for lo, batch in batches:
            out[lo - start : lo - start + len(batch)] = batch
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
        feed = {entry.inputs[0]: array}
        if labels is not None:
            feed[entry.inputs[1]] = labels.rows(0, len(array))
        z_mean, z_log_var = self._session("encoder").run(list(entry.outputs), feed)
        return z_mean, z_log_var

    # -- self test ------------------------------------------------------------------

    def selftest(self) -> SelfTestResult:
        """Decode the golden inputs of model.json and compare with the recorded outputs."""
        golden = self.card.golden
        images, noise_images = self.golden_outputs(golden)
        diff = float(np.max(np.abs(images - np.asarray(golden.images, np.float32)))) if len(images) else 0.0
        checks = len(images)
        if noise_images is not None:
            diff = max(diff, float(np.max(np.abs(noise_images - np.asarray(golden.noise_images, np.float32)))))
            checks += len(noise_images)
        # The outputs were recorded on the exporting machine's engine; another CPU's kernels may move them by the
        # precision's cross-engine bound, so the check allows that much (and no less than the card says).
        tolerance = max(golden.tolerance, CROSS_ENGINE[self.card.precision].max_abs)
        return SelfTestResult(diff <= tolerance, diff, tolerance, checks)  # a NaN diff fails

    def golden_outputs(self, golden: GoldenCheck) -> tuple[np.ndarray, np.ndarray | None]:
        """This engine's outputs for GOLDEN's inputs, one flat row per input: the images of its latents (with its
        label rows, fed as they are: they may be blends no label spec names), and of its noise through the prior
        (None for a model without a prior)."""
        z = np.asarray(golden.latents, np.float32).reshape(len(golden.latents), self.latent_dim)
        labels = Labels(self.classes, None, np.asarray(golden.labels, np.float32), 0) if self.classes else None
        images = self._decode(self._check_latents(z), labels, 0, DEFAULT_BATCH_SIZE).reshape(len(z), -1)
        if self.card.prior is None:
            return images, None
        noise = np.asarray(golden.noise, np.float32)
        graph = self.card.prior.graph
        prior_z = self._session("prior").run([graph.outputs[0]], {graph.inputs[0]: noise})[0]
        return images, self._decode(self._check_latents(prior_z), labels, 0, DEFAULT_BATCH_SIZE).reshape(len(noise), -1)

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

    def _check_providers(self) -> None:
        onnxruntime = import_onnxruntime()

        available = onnxruntime.get_available_providers()
        if not self._providers:
            raise InvalidArgumentError(f"providers is empty; available: {', '.join(available)}")
        for provider in self._providers:
            if provider not in available:
                raise InvalidArgumentError(
                    f"execution provider {provider!r} is not available; available: {', '.join(available)}"
                )

    def _session(self, role: str) -> GuardedSession:
        """The session of graph `role` ("decoder", "encoder" or "prior"), opened and checked against the card once,
        under the lock, however many threads ask for it first."""
        session = self._sessions.get(role)
        if session is None:
            with self._lock:
                session = self._sessions.get(role)
                if session is None:
                    entry, inputs, outputs = self._graph_contract(role)
                    # One thread for the prior: it is a few microseconds per image, and a thread pool of its own
                    # would spin after each call on the cores the decoder's pool is about to use (generate took
                    # 1.7x as long with a 2-thread prior pool: benchmarks/prior_cost.py).
                    session = self._open_session(entry, threads=1 if role == "prior" else None)
                    self._check_shapes(entry, session, inputs, outputs)
                    self._sessions[role] = session
        return session

    def _graph_contract(self, role: str) -> tuple[OnnxFile, list[list[int]], list[list[int]]]:
        """(graph entry, input shapes, output shapes after the batch axis) that the card promises for `role`."""
        label = [[len(self.classes)]] if self.classes else []
        if role == "decoder":
            return self.card.decoder, [[self.latent_dim], *label], [list(self.card.image_shape)]
        if role == "encoder":
            assert self.card.encoder is not None  # encode refuses a decoder-only model first
            return self.card.encoder, [list(self.card.image_shape), *label], [[self.latent_dim], [self.latent_dim]]
        assert role == "prior" and self.card.prior is not None
        return self.card.prior.graph, [[self.card.prior.noise_dim]], [[self.latent_dim]]

    def _open_session(self, entry: OnnxFile, threads: int | None = None) -> GuardedSession:
        onnxruntime = import_onnxruntime()

        path = self.folder / entry.file
        model_bytes = verified_bytes(self.folder, entry)  # checked when opened, not only when the card was read
        options = onnxruntime.SessionOptions()
        threads = self._threads if threads is None else threads
        if threads is None:
            threads = affinity_threads()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 4  # fatal only: errors reach the user once, as ours
        try:
            # enable_fallback=0: on failure onnxruntime would print a banner to stdout and
            # silently retry on other providers; we report the error instead.
            session = onnxruntime.InferenceSession(
                model_bytes, sess_options=options, providers=list(self._providers), enable_fallback=0
            )
        except Exception as exc:  # onnxruntime raises its own, untyped, errors for bad graphs
            if is_out_of_memory(exc):  # not the file's fault
                raise out_of_memory(f"loading {path}", exc) from None
            raise ModelIntegrityError(f"{path}: onnxruntime cannot load it ({str(exc).splitlines()[0]})") from None
        inputs = tuple(i.name for i in session.get_inputs())
        outputs = tuple(o.name for o in session.get_outputs())
        if inputs != entry.inputs or outputs != entry.outputs:
            raise ModelIntegrityError(
                f"{path}: graph inputs {list(inputs)} and outputs {list(outputs)} disagree with model.json "
                f"(inputs {list(entry.inputs)}, outputs {list(entry.outputs)})"
            )
        log.debug("loaded %s with providers %s", path, session.get_providers())
        return GuardedSession(session, entry.file)

    def _check_shapes(
        self, entry: OnnxFile, session: GuardedSession, inputs: list[list[int]], outputs: list[list[int]]
    ) -> None:
        """The graph's input and output shapes (after the batch axis) must be what model.json says."""
        got_inputs = [list(graph_input.shape[1:]) for graph_input in session.get_inputs()]
        got_outputs = [list(output.shape[1:]) for output in session.get_outputs()]
        if got_inputs != inputs or got_outputs != outputs:
            raise ModelIntegrityError(
                f"{self.folder / entry.file}: shapes (after the batch axis) inputs {got_inputs}, outputs {got_outputs} "
                f"disagree with model.json, which says inputs {inputs}, outputs {outputs} (latent_dim {self.latent_dim}, "
                f"image_shape {list(self.card.image_shape)}, {len(self.classes)} classes)"
            )


def check_batch_size(batch_size: object) -> int:
    return check_integer(batch_size, 1, MAX_BATCH_SIZE, "batch size")


def check_count(n: object) -> int:
    return check_integer(n, 1, MAX_IMAGES, "number of images")


def _check_start(start: object) -> int:
    return check_integer(start, 0, MAX_IMAGES, "start index")
