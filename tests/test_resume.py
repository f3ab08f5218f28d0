"""Training that can stop: a checkpoint at every epoch's end, and `vae-gen train --resume RUN` to the same weights."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vae_gen.cli.commands import main

pytestmark = pytest.mark.tensorflow

#: A tiny deterministic run of two epochs (a few seconds each).
TINY = ["--epochs", "2", "--train-limit", "2000", "--test-limit", "500", "--batch-size", "128", "--deterministic"]


def weights(run: Path) -> list[np.ndarray]:
    import keras

    models = [keras.saving.load_model(run / f"{name}.keras", compile=False) for name in ("encoder", "decoder")]
    return [w for model in models for w in model.get_weights()]


def same_weights(a: Path, b: Path) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(weights(a), weights(b), strict=True))


def stop_training_at(out: Path, line_start: str, signum: int = signal.SIGTERM) -> str:
    """Run `vae-gen train` in a child process, signal it when its log prints a line starting with `line_start`,
    and return what it printed after that."""
    argv = [sys.executable, "-m", "vae_gen", "train", *TINY, "--out", str(out)]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith(line_start):
            process.send_signal(signum)
            break
    rest = process.communicate(timeout=300)[1]
    assert process.returncode == 130, rest
    return rest


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])  # kill's default, and Ctrl-C
def test_a_run_stopped_after_epoch_1_resumes_to_the_weights_of_an_uninterrupted_run(uninterrupted, tmp_path, capsys, signum):
    out = tmp_path / "run"
    rest = stop_training_at(out, "  checkpoint of epoch 1", signum)
    assert rest == f"vae-gen train: interrupted; training stopped after epoch 1 of 2; continue with " \
                   f"`vae-gen train --resume {out}`\n"  # fmt: skip
    # Clearly unfinished: the marker says how to continue; nothing under a final name.
    assert sorted(p.name for p in out.iterdir()) == ["INCOMPLETE", "checkpoint.npz", "settings.json"]
    assert f"vae-gen train --resume {out}" in (out / "INCOMPLETE").read_text()

    assert main(["train", "--resume", str(out)]) == 0
    assert f"-> {out}: test -ELBO" in capsys.readouterr().out
    assert not (out / "INCOMPLETE").exists() and not (out / "checkpoint.npz").exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in uninterrupted.iterdir())
    assert same_weights(out, uninterrupted)
    history = json.loads((out / "history.json").read_text())
    assert history == json.loads((uninterrupted / "history.json").read_text()) and len(history) == 2
    ours, theirs = (json.loads((run / "metrics.json").read_text()) for run in (out, uninterrupted))
    assert ours["test_metrics"] == theirs["test_metrics"] and ours["settings"] == theirs["settings"]


def test_a_run_stopped_while_saving_resumes_by_finishing_without_training(uninterrupted, tmp_path, capsys):
    out = tmp_path / "run"
    stop_training_at(out, "  checkpoint of epoch 2")
    assert (out / "INCOMPLETE").exists() and not (out / "metrics.json").exists()
    assert main(["train", "--resume", str(out)]) == 0
    assert "epoch " not in capsys.readouterr().err  # no epoch trained again
    assert same_weights(out, uninterrupted)


def test_a_run_stopped_in_its_first_epoch_keeps_nothing(tmp_path):
    out = tmp_path / "run"
    rest = stop_training_at(out, "run folder ")
    assert rest == "vae-gen train: interrupted; training stopped before its first epoch ended; nothing was kept\n"
    assert not out.exists() and not list(tmp_path.iterdir())


def test_resume_continues_an_adversarial_run_with_keep_best_and_warmup_exactly(tmp_path, monkeypatch):
    """Every kind of state: the discriminator and its optimizer, the decoder's average, the prior noise, the KL
    warm-up and the best epoch so far. Stopped in-process right after epoch 2's checkpoint."""
    from vae_gen.train import checkpoint as checkpoint_module
    from vae_gen.train.fit import TrainingInterrupted, resume, train
    from vae_gen.training.settings import TrainSettings

    settings = TrainSettings(
        epochs=3, train_limit=512, test_limit=128, batch_size=64, objective="adversarial", adversarial_weight=0.5,
        keep_best=True, kl_warmup_epochs=2, deterministic=True,
    )  # fmt: skip
    train(settings, tmp_path / "whole")

    save = checkpoint_module.SaveCheckpoint.on_epoch_end

    def stop_after_epoch_2(self, epoch, logs=None):
        save(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module.SaveCheckpoint, "on_epoch_end", stop_after_epoch_2)
    with pytest.raises(TrainingInterrupted, match="after epoch 2 of 3"):
        train(settings, tmp_path / "stopped")
    monkeypatch.undo()
    resume(tmp_path / "stopped")
    assert same_weights(tmp_path / "stopped", tmp_path / "whole")
    import keras

    discriminators = [keras.saving.load_model(tmp_path / run / "discriminator.keras") for run in ("whole", "stopped")]
    assert all(np.array_equal(a, b) for a, b in zip(*(d.get_weights() for d in discriminators), strict=True))
    summaries = [json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("whole", "stopped")]
    assert summaries[0]["best_epoch"] == summaries[1]["best_epoch"]


def test_a_checkpoint_of_other_data_or_another_model_is_refused_in_one_line(tmp_path):
    from vae_gen.train.checkpoint import Progress, load_checkpoint, restore, save_checkpoint
    from vae_gen.train.data import DataError

    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, [np.zeros((2, 3), np.float32)], Progress(epochs_done=1), None)
    stored = load_checkpoint(path)
    assert stored.progress.epochs_done == 1 and stored.values[0].shape == (2, 3)

    class Variable:
        shape, dtype, path = (3, 2), "float32", "dense/kernel"

    with pytest.raises(DataError, match=r"dense/kernel is float32\[2, 3\] there, float32\[3, 2\] in this run's model"):
        restore([Variable()], stored.values, path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not a readable checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("make", "options", "message"),
    [
        ("finished", [], "its training finished already; nothing to resume"),
        ("empty", [], "not an unfinished run folder of vae-gen train (it has no INCOMPLETE file)"),
        ("missing", [], "no such run folder"),
        ("unfinished", ["--epochs", "3"], "--epochs: --resume continues"),
        ("unfinished", ["--out", "x"], "--out: --resume continues"),
    ],
)
def test_resume_refusals_are_one_line_and_fast(tmp_path, make, options, message):
    run = tmp_path / "run"
    if make != "missing":
        run.mkdir()
    if make == "finished":
        (run / "metrics.json").write_text("{}")
    if make == "unfinished":
        (run / "INCOMPLETE").write_text("")
        (run / "settings.json").write_text("{}")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "vae_gen", "train", "--resume", str(run), *options],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert time.perf_counter() - started < 5  # TensorFlow never loaded
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_an_unfinished_run_is_not_exported(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "INCOMPLETE").write_text("")
    (run / "settings.json").write_text("{}")
    assert main(["export", str(run), "--out", str(tmp_path / "model")]) == 2
    assert f"its training has not finished; continue it with vae-gen train --resume {run}" in capsys.readouterr().err


@pytest.mark.parametrize("epochs_done", [7, -1, "1", True])
def test_a_hand_edited_checkpoint_epoch_count_is_refused_in_one_line(tmp_path, epochs_done):
    from vae_gen.train.checkpoint import Progress, save_checkpoint
    from vae_gen.train.data import DataError
    from vae_gen.train.fit import resume
    from vae_gen.training.settings import TrainSettings

    run = tmp_path / "run"
    run.mkdir()
    settings = TrainSettings(epochs=2, train_limit=256, test_limit=64, batch_size=128)
    (run / "settings.json").write_text(json.dumps(settings.to_dict()))
    (run / "INCOMPLETE").write_text("")
    save_checkpoint(run / "checkpoint.npz", [], Progress(epochs_done=epochs_done), None)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"checkpoint.npz: records .* epochs done, not 0 to 2; start a new run"):
        resume(run)
