"""One `sample` run spread over many workers with Dask (the `dask` extra).

Each task writes one shard of the run into the shared output folder: whole
batches of the full run (see run_layout.shard_range), so every image is decoded
exactly as a single process would decode it. Shards never touch each
other's files and share one run record. When all are done, the driver
merges the shard manifests into manifest.jsonl: the folder then holds
byte for byte what one single-process run writes.

Workers need the package installed and the output folder and model folder
on a filesystem they all see (on one machine, nothing to do).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .errors import InvalidArgumentError, MissingExtraError
from .model.engine import describe, engine_fingerprint
from .model.store import resolve_model
from .output.png_folder import generate_to_folder, merge_manifests
from .output.run_layout import RUN_RECORD, RunSpec, shard_range
from .output.run_record import ENGINE_FIELD, ENGINES_FIELD, run_record, write_run_record
from .sampling.generator import DEFAULT_BATCH_SIZE, Generator
from .sampling.labels import LabelSpec

log = logging.getLogger(__name__)

#: Shards per Dask worker: more than one evens out slow and fast workers.
SHARDS_PER_WORKER = 4

# One loaded model per worker process, reused by all its tasks (the callable-class pattern).
_GENERATORS: dict[tuple[str, int], Generator] = {}


def _generator(model_folder: str, threads: int) -> Generator:
    key = (model_folder, threads)
    if key not in _GENERATORS:
        _GENERATORS[key] = Generator(model_folder, threads=threads)
    return _GENERATORS[key]


def _write_shard(
    shard: int, shards: int, model_folder: str, folder: str, spec: RunSpec, mode: str, threads: int, strict_engine: bool
) -> tuple[int, dict[str, str]]:
    """Write one shard; returns how many files it wrote and the worker's engine fingerprint."""
    generator = _generator(model_folder, threads)
    lo, hi = shard_range(spec.count, shard, shards, spec.batch_size)
    if lo == hi:
        return 0, engine_fingerprint()
    written = generate_to_folder(generator, Path(folder), spec, lo, hi, mode=mode, strict_engine=strict_engine)
    return written, engine_fingerprint()


def generate_with_dask(
    client: Any,
    count: int,
    seed: int,
    folder: Path,
    *,
    model: str | Path | None = None,
    temperature: float = 1.0,
    label: LabelSpec | None = None,
    guidance: float = 0.0,
    layout: str = "flat",
    batch_size: int = DEFAULT_BATCH_SIZE,
    shards: int | None = None,
    resume: bool = False,
    threads: int = 1,
    strict_engine: bool = False,
) -> int:
    """Write images 0..count-1 of (model, seed) as PNGs into `folder` using a dask.distributed Client.

    label, guidance and layout: as `bulk.generate_run` takes them (a conditional model's class for the whole run).

    Returns how many files the workers wrote. With resume=True, a failed or
    interrupted job is finished by calling again with the same arguments.

    Images are byte-identical to one process's run where every worker has the
    same engine (vae_gen.model.engine); the run record lists the workers' engines,
    and a run that mixed them says so in one warning. strict_engine=True makes
    a worker whose engine differs from the run's first refuse its shard.
    """
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise MissingExtraError("scale-out needs Dask; install it with: pip install 'vae-gen[dask]'") from None
    generator = Generator(model, lazy=True)  # validates the model and the arguments here, not on the workers
    spec = RunSpec.for_generator(generator, seed, count, temperature, batch_size, label, layout, guidance)
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    shards = shards or workers * SHARDS_PER_WORKER
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise InvalidArgumentError(f"shards must be an integer >= 1, got {shards!r}")
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    model_folder = str(resolve_model(model).resolve())
    mode = "resume" if resume else "new"
    futures = client.map(
        _write_shard, range(shards), shards=shards, model_folder=model_folder, folder=str(folder),
        spec=spec, mode=mode, threads=threads, strict_engine=strict_engine, pure=False,
    )  # fmt: skip
    results = client.gather(futures)
    written = sum(count for count, _ in results)
    _record_engines(folder, spec, [engine for _, engine in results])
    ranges = [shard_range(count, k, shards, batch_size) for k in range(shards)]
    merge_manifests(folder, count, [r for r in ranges if r[0] < r[1]])
    return int(written)


def _record_engines(folder: Path, spec: RunSpec, engines: list[dict[str, str]]) -> None:
    """When workers of several engines took part (the run's first included), list them in the run record and warn."""
    try:
        recorded = json.loads((folder / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = {}
    recorded = recorded if isinstance(recorded, dict) else {}
    first = recorded.get(ENGINE_FIELD)
    earlier = recorded.get(ENGINES_FIELD)  # a resumed run's earlier workers
    distinct: list[dict[str, str]] = []
    for engine in [first, *(earlier if isinstance(earlier, list) else []), *engines]:
        if isinstance(engine, dict) and engine not in distinct:
            distinct.append(engine)
    if len(distinct) > 1:  # one engine: the record stays as one process writes it, byte for byte
        record = run_record(spec, distinct)
        if isinstance(first, dict):
            record[ENGINE_FIELD] = first
        write_run_record(folder, record)
        log.warning(
            "%s: this run mixed %d engines (%s): its images are byte-identical within each engine's shards, and within "
            "the cross-engine tolerance between them (docs/determinism.md)",
            folder, len(distinct), "; ".join(describe(engine) for engine in distinct),
        )  # fmt: skip
