"""The onnxruntime sessions of one model folder: each graph opened on first use, checked against its card.

A graph is handed to onnxruntime only as bytes whose sha256 the card names, and
its session must then show the input and output names and shapes the card
promises (latent size, image shape, classes), or loading fails in one line.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.checks import check_integer
from ..core.memory import GuardedSession, import_onnxruntime, is_out_of_memory, out_of_memory
from ..errors import InvalidArgumentError, ModelIntegrityError
from .card import ModelCard, verified_bytes
from .card_parts import OnnxFile

log = logging.getLogger(__name__)

#: Images decoded per onnxruntime call unless the caller says otherwise. onnxruntime's
#: buffers grow with the batch while its speed does not (residual32 decoder, 2 cores,
#: `python benchmarks/batch_size.py`): 2,412 / 2,334 / 2,354 / 2,145 images/s at 16 / 32 /
#: 64 / 1024, peaking at 82 / 94 / 116 / 850 MB RSS over 10,000 images. 32 keeps vae-gen
#: under 100 MB and costs the tiny dense2 decoder less than 16 would.
DEFAULT_BATCH_SIZE = 32
#: Larger batches only cost memory: onnxruntime's activations take about 0.42 MB per image of a batch with the
#: default model, 1.8 GB at 4,096 (measured: /usr/bin/time -f %M vae-gen sample -n 4096 --batch-size 4096 --out b.npy).
MAX_BATCH_SIZE = 4_096


def check_batch_size(batch_size: object) -> int:
    """Images per decoder call: 1 to MAX_BATCH_SIZE."""
    return check_integer(batch_size, 1, MAX_BATCH_SIZE, "batch size")


def affinity_threads() -> int | None:
    """The CPUs this process may run on, when fewer than the machine has (`taskset -c 0`, a container's cpuset);
    else None: onnxruntime's own choice. onnxruntime sizes and pins its pool by the machine's cores, so under a
    narrower affinity its threads would escape to cores the user kept free."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return None
    return allowed if allowed < (os.cpu_count() or allowed) else None


class ModelSessions:
    """One onnxruntime session per graph of a verified model folder, opened on first use; thread-safe.

    threads: intra-op threads (None: the process's CPU affinity, or onnxruntime's choice where that is every
    CPU); providers: execution providers in order of preference, each available in this onnxruntime.
    """

    def __init__(self, folder: Path, card: ModelCard, threads: int | None, providers: Sequence[str]) -> None:
        self.folder = folder
        self.card = card
        self.threads = threads
        self.providers = tuple(providers)
        self.opened: dict[str, GuardedSession] = {}
        self._lock = threading.Lock()
        self._check_providers()

    def get(self, role: str) -> GuardedSession:
        """The session of graph `role` ("decoder", "encoder" or "prior"), opened and checked against the card once,
        under the lock, however many threads ask for it first."""
        session = self.opened.get(role)
        if session is None:
            with self._lock:
                session = self.opened.get(role)
                if session is None:
                    entry, inputs, outputs = self._graph_contract(role)
                    # One thread for the prior: it is a few microseconds per image, and a thread pool of its own
                    # would spin after each call on the cores the decoder's pool is about to use (generate took
                    # 1.7x as long with a 2-thread prior pool: benchmarks/prior_cost.py).
                    session = self._open(entry, threads=1 if role == "prior" else None)
                    self._check_shapes(entry, session, inputs, outputs)
                    self.opened[role] = session
        return session

    def decode(self, z: np.ndarray, label_rows: np.ndarray | None) -> np.ndarray:
        """One decoder call: checked latents [n, latent_dim] (and label rows [n, K]) -> float32 [n, H, W, C]."""
        entry = self.card.decoder
        feed = {entry.inputs[0]: z} if label_rows is None else {entry.inputs[0]: z, entry.inputs[1]: label_rows}
        images: np.ndarray = self.get("decoder").run([entry.outputs[0]], feed)[0]
        return images

    def encode(self, images: np.ndarray, label_rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """One encoder call: checked images [n, H, W, C] (and label rows) -> (z_mean, z_log_var) [n, latent_dim]."""
        entry = self.card.encoder
        assert entry is not None  # the caller refuses a decoder-only model first
        feed = {entry.inputs[0]: images}
        if label_rows is not None:
            feed[entry.inputs[1]] = label_rows
        z_mean, z_log_var = self.get("encoder").run(list(entry.outputs), feed)
        return z_mean, z_log_var

    def prior(self, noise: np.ndarray) -> np.ndarray:
        """The prior graph: checked noise [n, noise_dim] -> latents [n, latent_dim]."""
        assert self.card.prior is not None
        graph = self.card.prior.graph
        z: np.ndarray = self.get("prior").run([graph.outputs[0]], {graph.inputs[0]: noise})[0]
        return z

    def _check_providers(self) -> None:
        available = import_onnxruntime().get_available_providers()
        if not self.providers:
            raise InvalidArgumentError(f"providers is empty; available: {', '.join(available)}")
        for provider in self.providers:
            if provider not in available:
                raise InvalidArgumentError(
                    f"execution provider {provider!r} is not available; available: {', '.join(available)}"
                )

    def _graph_contract(self, role: str) -> tuple[OnnxFile, list[list[int]], list[list[int]]]:
        """(graph entry, input shapes, output shapes after the batch axis) that the card promises for `role`."""
        card = self.card
        label = [[len(card.classes)]] if card.classes else []
        if role == "decoder":
            return card.decoder, [[card.latent_dim], *label], [list(card.image_shape)]
        if role == "encoder":
            assert card.encoder is not None  # encode refuses a decoder-only model first
            return card.encoder, [list(card.image_shape), *label], [[card.latent_dim], [card.latent_dim]]
        assert role == "prior" and card.prior is not None
        return card.prior.graph, [[card.prior.noise_dim]], [[card.latent_dim]]

    def _open(self, entry: OnnxFile, threads: int | None = None) -> GuardedSession:
        onnxruntime = import_onnxruntime()

        path = self.folder / entry.file
        model_bytes = verified_bytes(self.folder, entry)  # checked when opened, not only when the card was read
        options = onnxruntime.SessionOptions()
        threads = self.threads if threads is None else threads
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
                model_bytes, sess_options=options, providers=list(self.providers), enable_fallback=0
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
            card = self.card
            raise ModelIntegrityError(
                f"{self.folder / entry.file}: shapes (after the batch axis) inputs {got_inputs}, outputs {got_outputs} "
                f"disagree with model.json, which says inputs {inputs}, outputs {outputs} (latent_dim {card.latent_dim}, "
                f"image_shape {list(card.image_shape)}, {len(card.classes)} classes)"
            )
