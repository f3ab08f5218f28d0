"""A PNG run's record, vae-gen-run.json in its folder: what a resume, a tail or a shard is checked against.

The record is the run's spec (`RunSpec.record()`) plus the engine that started
it (`engine`) and, for a run spread over Dask workers, every engine that wrote
part of it (`engines`). A process joining a run started on another engine is
warned in one line, or refused with `strict_engine`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import OutputError
from ..model.engine import describe, engine_fingerprint
from .atomic import atomic_file
from .run_layout import RUN_RECORD, RunSpec

log = logging.getLogger(__name__)

#: Run record fields beside the spec: the engine that started the run, and every engine that wrote part of it.
ENGINE_FIELD, ENGINES_FIELD = "engine", "engines"


def check_run_record(folder: Path, spec: RunSpec, mode: str, has_pngs: bool, strict_engine: bool) -> bool:
    """Refuse to mix runs in one folder; True when the record of this run is still to be written.

    A process joining a run that another engine started (a resume, a tail, a shard) is told in one line: its
    images may differ from that engine's by the cross-engine tolerance; strict_engine refuses it instead.
    """
    record = folder / RUN_RECORD
    if record.is_file() and mode != "overwrite":
        try:
            recorded = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise OutputError(f'{record}: unreadable run record ({exc}); pass mode="overwrite" to start afresh') from None
        expected = spec.record()
        recorded = RunSpec.normalized_record(recorded)
        engine = recorded.pop(ENGINE_FIELD, None) if isinstance(recorded, dict) else None
        if isinstance(recorded, dict):
            recorded.pop(ENGINES_FIELD, None)
        if recorded != expected:
            recorded = recorded if isinstance(recorded, dict) else {}
            differing = sorted(k for k in expected if recorded.get(k) != expected[k])
            raise OutputError(
                f'{folder}: holds a run with a different {", ".join(differing)}; use another folder or mode="overwrite"'
            )
        check_engine(folder, engine, strict_engine)
        return False
    if has_pngs and mode == "resume":
        raise OutputError(f"{folder}: holds PNG images but no {RUN_RECORD}, so there is no vae-gen run to resume")
    if has_pngs and mode == "new":
        raise OutputError(f'{folder}: already holds PNG images; pass mode="overwrite" to replace them')
    return True


def holds_another_run(folder: Path, spec: RunSpec, has_pngs: bool) -> bool:
    """Whether the folder holds images that are not of the run `spec`: another run's record, or PNGs without one."""
    record = folder / RUN_RECORD
    if not record.is_file():
        return has_pngs
    try:
        recorded = RunSpec.normalized_record(json.loads(record.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return True
    if not isinstance(recorded, dict):
        return True
    recorded.pop(ENGINE_FIELD, None)
    recorded.pop(ENGINES_FIELD, None)
    return bool(recorded != spec.record())


def check_engine(folder: Path, recorded: object, strict: bool) -> None:
    """Warn (or, strict, refuse) when this engine is not the one that started the run in `folder`."""
    here = engine_fingerprint()
    if recorded == here:
        return
    started = "started by a vae-gen that did not record its engine" if recorded is None else f"started on {describe(recorded)}"
    if strict:
        raise OutputError(
            f"{folder}: the run was {started}; this machine is {describe(here)}, and strict_engine=True allows "
            "only the same engine"
        )
    if recorded is not None:
        log.warning(
            "%s: the run was %s; this machine is %s, so its images may differ from that engine's by a level on a few "
            "pixels (docs/determinism.md)", folder, started, describe(here),
        )  # fmt: skip


def run_record(spec: RunSpec, engines: list[dict[str, str]] | None = None) -> dict[str, object]:
    """The JSON of a run record: the spec, the engine that started the run, and (a Dask run) every engine that
    wrote some of it."""
    record: dict[str, object] = spec.record() | {ENGINE_FIELD: engine_fingerprint()}
    if engines is not None:
        record[ENGINES_FIELD] = engines
    return record


def write_run_record(folder: Path, record: dict[str, object]) -> None:
    with atomic_file(folder / RUN_RECORD) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
