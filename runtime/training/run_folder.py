"""The run folder of `vae-gen train`, checked before TensorFlow loads: new, resumed, or a starting point.

A new run needs an empty or absent folder under an existing parent, its data
and the folder of weights it starts from (`check_before_training`); an
unfinished run is marked by its INCOMPLETE file and continues from the
settings.json and checkpoint it holds (`check_before_resuming`). Training
itself (vae_gen.train.fit) writes these files and checks the same again.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidArgumentError, ModelNotFoundError, OutputError
from .rules import SettingError
from .settings import FASHION_MNIST, TrainSettings


def check_new_run_folder(out_dir: Path) -> None:
    """Refuse a run folder that exists with something in it (a run is never overwritten) or whose parent is
    missing: checked before TensorFlow loads, and again by training itself."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise OutputError(f"{out_dir}: already exists and is not an empty folder; choose a new run folder")
    if not out_dir.parent.is_dir():
        raise OutputError(f"{out_dir.parent}: folder does not exist")


def starting_folder(init_from: str) -> Path:
    """The folder `init_from` names (a model folder or a run folder; a shipped model's name in a checkout),
    absolute; it must hold encoder.keras and decoder.keras."""
    from ..model.store import resolve_model, shipped_models_dir

    try:
        folder = resolve_model(init_from).resolve()
    except ModelNotFoundError as exc:
        raise SettingError("init_from", str(exc)) from None
    missing = [name for name in ("encoder.keras", "decoder.keras") if not (folder / name).is_file()]
    if missing:
        hint = ""
        if folder.parent.resolve() == shipped_models_dir().resolve():
            hint = f" (the installed package ships only ONNX graphs; give a checkout's models/{folder.name} folder)"
        raise SettingError("init_from", f"{folder} has no {' or '.join(missing)} to start from{hint}")
    return folder


def check_before_training(settings: TrainSettings, out_dir: Path) -> None:
    """What can be refused without TensorFlow: the run folder, the data folder, the starting weights."""
    check_new_run_folder(out_dir)
    if settings.data != FASHION_MNIST and not Path(settings.data).expanduser().is_dir():
        raise SettingError("data", f"{settings.data!r} is neither {FASHION_MNIST} nor an existing folder of images")
    if settings.init_from is not None:
        starting_folder(settings.init_from)


#: A run folder holds this file from the moment training starts until every final file is in place: the folder
#: is then clearly unfinished, and says how to continue.
INCOMPLETE_FILE = "INCOMPLETE"
#: The state of the last finished epoch (weights, optimizer moments, random-number states, best so far).
CHECKPOINT_FILE = "checkpoint.npz"


def incomplete_note(run_dir: Path) -> str:
    """The text of a run folder's INCOMPLETE file."""
    return (
        f"Training of this run has not finished; {CHECKPOINT_FILE} (when present) holds its last finished epoch.\n"
        f"Continue it with:\n    vae-gen train --resume {run_dir}\n"
    )


def check_before_resuming(run_dir: Path) -> TrainSettings:
    """The settings of an unfinished run folder, checked without TensorFlow: it must be marked INCOMPLETE and hold
    its settings.json; its data folder must still exist."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InvalidArgumentError(f"--resume {run_dir}: no such run folder")
    if not (run_dir / INCOMPLETE_FILE).is_file():
        finished = (run_dir / "metrics.json").is_file()
        raise InvalidArgumentError(
            f"--resume {run_dir}: " + ("its training finished already; nothing to resume" if finished
                                       else "not an unfinished run folder of vae-gen train (it has no INCOMPLETE file)")
        )  # fmt: skip
    settings_path = run_dir / "settings.json"
    if not settings_path.is_file():
        raise InvalidArgumentError(f"--resume {run_dir}: its settings.json is missing; the run cannot be continued")
    settings = TrainSettings.from_file(settings_path)
    if settings.data != FASHION_MNIST and not Path(settings.data).is_dir():
        raise InvalidArgumentError(f"--resume {run_dir}: its data folder {settings.data} no longer exists")
    return settings
