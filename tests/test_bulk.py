"""Bulk generation: shards, start, resume, locks, layout, parallel PNG writing, streamed arrays."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import DENSE2
from PIL import Image

import vae_gen
from vae_gen.bulk import (
    FILES_PER_FOLDER,
    RunSpec,
    generate_run,
    generate_to_folder,
    png_relpath,
    shard_range,
)
from vae_gen.cli.commands import main
from vae_gen.output.locks import FolderLock, _names_this_file


def png_digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.png")}


def sample(*argv: str) -> int:
    return main(["sample", "--quiet", *argv])


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    """1,000 images, seed 5, batches of 64, in one process."""
    out = tmp_path_factory.mktemp("full") / "out"
    assert sample("-n", "1000", "--seed", "5", "--batch-size", "64", "--workers", "0", "--out", str(out)) == 0
    return out


@pytest.mark.portability
@pytest.mark.parametrize("model", [DENSE2, vae_gen.DEFAULT_MODEL, "fashion-mnist-conditional32"])
def test_shards_start_threads_and_resume_reproduce_a_run_on_this_engine(model, tmp_path):
    """Small enough to rerun under an emulated CPU: each kernel path (GEMM, convolution) keeps its bytes
    however a run is split, threaded or resumed."""
    import shutil

    run = ["-n", "48", "--seed", "11", "--batch-size", "16", "--model", model]
    run += ["--class", "all"] if model.endswith("conditional32") else []
    full = tmp_path / "full"
    assert sample(*run, "--threads", "2", "--out", str(full)) == 0
    for k in range(3):
        assert sample(*run, "--threads", "1", "--shard", f"{k}/3", "--out", str(tmp_path / "sharded")) == 0
    assert png_digests(tmp_path / "sharded") == png_digests(full)
    assert sample(*run, "--start", "40", "--out", str(tmp_path / "tail")) == 0
    assert png_digests(tmp_path / "tail") == {k: v for k, v in png_digests(full).items() if int(k[:6]) >= 40}
    shutil.copytree(full, tmp_path / "resumed")
    (tmp_path / "resumed" / "000037.png").unlink()
    assert sample(*run, "--resume", "--out", str(tmp_path / "resumed")) == 0
    assert png_digests(tmp_path / "resumed") == png_digests(full)


def test_full_run_folder(full_run):
    assert len(png_digests(full_run)) == 1000
    lines = (full_run / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines[:2]] == [
        {"index": 0, "file": "000000.png", "seed": 5}, {"index": 1, "file": "000001.png", "seed": 5}
    ]  # fmt: skip
    assert len(lines) == 1000
    record = json.loads((full_run / "vae-gen-run.json").read_text())
    assert record["seed"] == 5 and record["count"] == 1000 and record["batch_size"] == 64
    generated = vae_gen.load().generate(1000, seed=5, batch_size=64)
    assert np.array_equal(np.asarray(Image.open(full_run / "000999.png")), generated[999])


def test_shards_reproduce_the_full_run_byte_for_byte(full_run, tmp_path):
    out = tmp_path / "sharded"
    for k in range(3):
        assert sample("-n", "1000", "--seed", "5", "--batch-size", "64", "--shard", f"{k}/3", "--out", str(out)) == 0
    assert png_digests(out) == png_digests(full_run)
    assert sorted(p.name for p in out.glob("manifest-*.jsonl")) == [
        "manifest-0-320.jsonl", "manifest-320-640.jsonl", "manifest-640-1000.jsonl"
    ]  # fmt: skip


def test_start_reproduces_the_tail_byte_for_byte(full_run, tmp_path):
    out = tmp_path / "tail"
    assert sample("-n", "1000", "--seed", "5", "--batch-size", "64", "--start", "700", "--out", str(out)) == 0
    tail = png_digests(out)
    assert len(tail) == 300
    assert tail == {name: digest for name, digest in png_digests(full_run).items() if int(name[:6]) >= 700}


def test_parallel_workers_write_the_same_files(full_run, tmp_path):
    out = tmp_path / "parallel"
    assert sample("-n", "1000", "--seed", "5", "--batch-size", "64", "--workers", "2", "--out", str(out)) == 0
    assert png_digests(out) == png_digests(full_run)


def test_resume_after_an_interruption(full_run, tmp_path):
    import shutil

    out = tmp_path / "resumed"
    shutil.copytree(full_run, out)
    # What an interrupted run leaves: some files never written, a temporary, no manifest.
    for name in ("000010.png", "000500.png", "000999.png"):
        (out / name).unlink()
    (out / ".000011.png.123.abcd.tmp").write_bytes(b"half a png")
    (out / "manifest.jsonl").unlink()
    assert sample("-n", "1000", "--seed", "5", "--batch-size", "64", "--out", str(out)) == 2  # not without --resume
    assert sample("-n", "1000", "--seed", "5", "--batch-size", "64", "--out", str(out), "--resume") == 0
    assert png_digests(out) == png_digests(full_run)
    assert not list(out.glob("*.tmp"))
    assert (out / "manifest.jsonl").read_text() == (full_run / "manifest.jsonl").read_text()


def test_resume_writes_only_what_is_missing(full_run, tmp_path):
    import shutil

    out = tmp_path / "resumed"
    shutil.copytree(full_run, out)
    (out / "000123.png").unlink()
    generator = vae_gen.load()
    spec = RunSpec.for_generator(generator, seed=5, count=1000, temperature=1.0, batch_size=64)
    assert generate_to_folder(generator, out, spec, mode="resume") == 1


def test_resume_refuses_a_different_run(full_run, tmp_path, capsys):
    import shutil

    out = tmp_path / "other"
    shutil.copytree(full_run, out)
    assert sample("-n", "1000", "--seed", "6", "--batch-size", "64", "--out", str(out), "--resume") == 2
    assert "holds a run with a different seed" in capsys.readouterr().err


def test_resume_refuses_foreign_pngs(tmp_path, capsys):
    Image.new("L", (28, 28)).save(tmp_path / "000000.png")
    assert sample("-n", "4", "--out", str(tmp_path), "--resume") == 2
    assert "no vae-gen run to resume" in capsys.readouterr().err


def test_second_writer_of_the_same_images_is_locked_out(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    with FolderLock(out, "0-50"):
        assert sample("-n", "50", "--out", str(out)) == 2
    assert "another vae-gen process is writing the same images" in capsys.readouterr().err
    assert not list(out.glob("*.png"))
    assert sample("-n", "50", "--out", str(out)) == 0  # the lock is gone with its holder


def test_layout_of_runs_over_ten_thousand_images(tmp_path):
    assert png_relpath(0, 16) == "000000.png"
    assert png_relpath(9_999, FILES_PER_FOLDER) == "009999.png"
    assert png_relpath(0, FILES_PER_FOLDER + 1) == "0000/000000.png"
    assert png_relpath(123_456, 1_000_000) == "0012/123456.png"
    assert png_relpath(1_234_567, 2_000_000) == "0123/1234567.png"
    out = tmp_path / "big"
    assert sample("-n", "10005", "--start", "9995", "--out", str(out)) == 0
    names = sorted(png_digests(out))
    assert names[0] == "0000/009995.png" and names[-1] == "0001/010004.png" and len(names) == 10


def test_shard_ranges_tile_the_run_in_whole_batches():
    for count, shards, batch in [(1000, 3, 64), (10, 4, 256), (100_000, 7, 256), (5, 5, 1)]:
        ranges = [shard_range(count, k, shards, batch) for k in range(shards)]
        assert ranges[0][0] == 0 and ranges[-1][1] == count
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
        assert all(lo % batch == 0 for lo, _ in ranges if lo < count)


def test_arrays_by_shard_concatenate_to_the_full_array(tmp_path):
    assert sample("-n", "700", "--seed", "2", "--out", str(tmp_path / "full.npy")) == 0
    for k in range(2):
        assert sample("-n", "700", "--seed", "2", "--shard", f"{k}/2", "--out", str(tmp_path / f"part{k}.npz")) == 0
    parts = [np.load(tmp_path / f"part{k}.npz")["images"] for k in range(2)]
    assert np.array_equal(np.concatenate(parts), np.load(tmp_path / "full.npy"))


def test_array_is_never_silently_replaced(tmp_path, capsys):
    out = tmp_path / "images.npy"
    out.write_bytes(b"precious")
    assert sample("-n", "4", "--out", str(out)) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert sample("-n", "4", "--out", str(out), "--overwrite") == 0
    assert np.load(out).shape == (4, 28, 28)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-n", "10", "--shard", "3/3", "--grid", "g.png"], "shard must be K/N with integers 0 <= K < N, got '3/3'"),
        (["-n", "10", "--shard", "1of2", "--grid", "g.png"], "shard must be K/N"),
        (["-n", "10", "--start", "10", "--grid", "g.png"], "--start 10 must be below -n 10"),
        (["-n", "10", "--out", "x.npy", "--resume"], "--resume finishes PNG folders"),
    ],
)
def test_bulk_argument_errors(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert sample(*argv) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_resume_leaves_other_ranges_temporaries_alone(full_run, tmp_path):
    import shutil

    out = tmp_path / "resumed"
    shutil.copytree(full_run, out)
    (out / "000010.png").unlink()
    ours = out / ".000010.png.99.beef.tmp"
    theirs = out / ".000900.png.98.cafe.tmp"  # another shard, still writing
    ours.write_bytes(b"stale")
    theirs.write_bytes(b"in flight")
    generator = vae_gen.load()
    spec = RunSpec.for_generator(generator, seed=5, count=1000, temperature=1.0, batch_size=64)
    assert generate_to_folder(generator, out, spec, 0, 320, mode="resume") == 1
    assert not ours.exists() and theirs.exists()


def test_grid_of_a_resumed_run_holds_every_image(full_run, tmp_path):
    import shutil

    out = tmp_path / "resumed"
    shutil.copytree(full_run, out)
    (out / "000999.png").unlink()
    argv = ["-n", "1000", "--seed", "5", "--batch-size", "64", "--out", str(out), "--resume"]
    assert sample(*argv, "--grid", str(tmp_path / "g.png")) == 0
    assert sample("-n", "1000", "--seed", "5", "--batch-size", "64", "--grid", str(tmp_path / "fresh.png")) == 0
    assert (tmp_path / "g.png").read_bytes() == (tmp_path / "fresh.png").read_bytes()


def test_cancel_event_stops_between_files_and_resume_finishes(full_run, tmp_path):
    import threading

    from vae_gen import Cancelled

    generator = vae_gen.load()
    spec = RunSpec.for_generator(generator, seed=5, count=1000, temperature=1.0, batch_size=64)
    cancel = threading.Event()
    out = tmp_path / "cancelled"

    def progress(done: int, total: int) -> None:
        if done >= 320:
            cancel.set()  # as a desktop app's Cancel button would

    with pytest.raises(Cancelled, match="every file written so far is complete"):
        generate_to_folder(generator, out, spec, progress=progress, cancel=cancel)
    written = len(list(out.glob("*.png")))
    assert 320 <= written < 1000 and not list(out.glob("*.tmp"))
    assert not (out / "manifest.jsonl").exists()
    assert generate_to_folder(generator, out, spec, mode="resume") == 1000 - written
    assert png_digests(out) == png_digests(full_run)


def test_the_api_call_behind_sample_writes_the_same_files(full_run, tmp_path):
    # A desktop app calling generate_run with the CLI's arguments gets the CLI's folder, byte for byte.
    out = tmp_path / "api"
    result = generate_run(vae_gen.load(), out, 1000, seed=5, batch_size=64, workers=0)
    assert (result.lo, result.hi, result.written) == (0, 1000, 1000)
    assert png_digests(out) == png_digests(full_run)
    assert (out / "manifest.jsonl").read_bytes() == (full_run / "manifest.jsonl").read_bytes()
    assert (out / "vae-gen-run.json").read_bytes() == (full_run / "vae-gen-run.json").read_bytes()


def test_the_api_resumes_what_the_cli_started_with_its_default_batch_size(tmp_path):
    # Neither names a batch size: both use the same default, so the app's run finishes with --resume.
    out = tmp_path / "out"
    cancel = threading.Event()
    cancel_after_first_batch = lambda done, total: cancel.set()  # noqa: E731
    with pytest.raises(vae_gen.Cancelled):
        generate_run(vae_gen.load(), out, 200, seed=3, workers=0, progress=cancel_after_first_batch, cancel=cancel)
    assert 0 < len(png_digests(out)) < 200
    assert sample("-n", "200", "--seed", "3", "--out", str(out), "--resume") == 0
    whole = tmp_path / "whole"
    assert sample("-n", "200", "--seed", "3", "--out", str(whole)) == 0
    assert png_digests(out) == png_digests(whole)


def test_api_errors_name_api_arguments_and_the_cli_its_options(tmp_path, capsys):
    out = tmp_path / "out"
    generate_run(vae_gen.load(), out, 4)
    with pytest.raises(vae_gen.OutputError, match=r'pass mode="overwrite" to replace its images or mode="resume"'):
        generate_run(vae_gen.load(), out, 4)
    assert sample("-n", "4", "--out", str(out)) == 2
    assert "pass --overwrite to replace its images or --resume to finish the run" in capsys.readouterr().err
    with pytest.raises(vae_gen.InvalidArgumentError, match=r"^start=4 must be below count=4$"):
        generate_run(vae_gen.load(), tmp_path / "other", 4, start=4)


def test_a_finished_or_cancelled_run_leaves_no_lock_file(full_run, tmp_path):
    assert not list(full_run.glob(".vae-gen-*.lock"))
    out = tmp_path / "cancelled"
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(vae_gen.Cancelled):
        generate_run(vae_gen.load(), out, 100, workers=0, cancel=cancel)
    assert not list(out.glob(".*"))


def test_a_lock_on_a_deleted_lock_file_does_not_count(tmp_path):
    # A process that opened the lock file just before its holder deleted it locks a file no longer in the
    # folder; FolderLock notices and locks the file that is there, so two writers can never both proceed.
    holder = FolderLock(tmp_path, "0-10").__enter__()
    late_opener = open(holder.path, "a+b")  # noqa: SIM115
    holder.__exit__(None, None, None)
    assert not holder.path.exists()
    assert not _names_this_file(holder.path, late_opener)
    with FolderLock(tmp_path, "0-10") as current:
        assert _names_this_file(current.path, current.handle)
        with pytest.raises(vae_gen.OutputError, match="another vae-gen process is writing the same images"):
            FolderLock(tmp_path, "0-10").__enter__()
    late_opener.close()


def test_an_empty_shard_is_refused_in_one_line(tmp_path, capsys):
    assert sample("-n", "10", "--shard", "0/2", "--out", str(tmp_path / "out"), "--grid", str(tmp_path / "g.png")) == 2
    assert "--shard 0/2 is empty: a run of 10 images has 1 batches of 32, fewer than 2 shards" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "g.png").exists()


def test_cli_spellings_leave_paths_in_messages_alone():
    from vae_gen.cli.commands import in_cli_terms

    assert in_cli_terms("start=4 must be below count=4") == "--start 4 must be below -n 4"
    path = "/runs/count=3/out=2/x.png"
    assert in_cli_terms(f'{path}: exists; pass mode="overwrite"') == f"{path}: exists; pass --overwrite"
