"""Hostile and careless values at the Python API's edge and in HTTP bodies: one InvalidArgumentError (or JSON 400)
naming the argument, never a raw numpy or Python exception, a warning, or work started."""

from __future__ import annotations

import json
import re
import threading
import warnings

import numpy as np
import pytest

import vae_gen
from vae_gen import InvalidArgumentError
from vae_gen.bulk import generate_run
from vae_gen.core.checks import SHOWN_CHARACTERS, numeric_array, shown

CONDITIONAL = "fashion-mnist-conditional32"


@pytest.fixture(scope="module")
def generator():
    return vae_gen.load()


# -- arrays: ragged, non-numeric, beyond float32 ------------------------------------------------

RAGGED_LATENTS = [[0.0] * 32, [0.0]]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda g: g.decode(RAGGED_LATENTS), "latents must be an array of numbers whose rows are equally long"),
        (lambda g: g.decode_uint8(RAGGED_LATENTS), "latents must be an array of numbers whose rows are equally long"),
        (lambda g: g.to_latents(RAGGED_LATENTS), "noise must be an array of numbers whose rows are equally long"),
        (lambda g: g.encode([[[0.0] * 28] * 28, [[0.0] * 28]]), "images must be an array of numbers whose rows are"),
        (lambda g: g.decode([["a"] * 32]), "latents must hold numbers, got str"),
        (lambda g: g.decode([[object()] * 32]), "latents must hold numbers, got object"),
        (lambda g: g.decode([[10**400] * 32]), "latents must hold numbers, got object"),
        (lambda g: g.decode(np.full((1, 32), 1e300)), "latents must be finite float32 values"),
        (lambda g: g.to_latents(np.full((1, 32), -1e300)), "noise must be finite float32 values"),
        (lambda g: g.encode(np.full((1, 28, 28), 1e300)), "images must be finite float32 values"),
        (lambda g: g.decode(np.zeros((1, 32), complex)), "latents must hold numbers, got complex128"),
    ],
)
def test_bad_arrays_are_one_invalid_argument_error_without_warnings(generator, call, message):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warnings would be a second line on a terminal
        with pytest.raises(InvalidArgumentError, match=message):
            call(generator)


def test_numeric_array_takes_what_numpy_reads_as_numbers():
    assert numeric_array([[1, 2], [3, 4]], "x").dtype.kind == "i"
    assert numeric_array(np.zeros((2, 2), np.float16), "x").dtype == np.float16
    with pytest.raises(InvalidArgumentError, match="x must hold numbers, got bool"):
        numeric_array([True], "x")


# -- arguments of the bulk API ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shard": (1.5, 2)}, "shard= must be"),
        ({"shard": ("0", "2")}, "shard= must be"),
        ({"shard": (0, 2, 3)}, "shard= must be"),
        ({"shard": (True, 2)}, "shard= must be"),
        ({"start": 1.5}, "start= must be an integer"),
        ({"start": -1}, "start= must be an integer"),
        ({"grid": "sheet.png", "grid_scale": 0}, "grid_scale= must be an integer from 1 to 64"),
        ({"grid": "sheet.png", "grid_scale": 64, "count": 100}, "grid_scale= 64 makes a sheet of 100 images"),
        ({"out": "runs/a\x00b"}, "out= must not contain a NUL byte"),
        ({"grid": "a\x00.png"}, "grid= must not contain a NUL byte"),
        ({"out": 5}, "out= must be a path"),
        ({"out": b"bytes"}, "out= must be a path"),
        ({"workers": "2"}, "workers= must be an integer from 0 to 64"),
        ({"workers": -1}, "workers= must be an integer from 0 to 64"),
        ({"workers": 10**6}, "workers= must be an integer from 0 to 64"),
        ({"cancel": 5}, "cancel must be None or an event"),
        ({"progress": 5}, "progress must be None or a callable"),
        ({"temperature": "1"}, "temperature must be a number"),
    ],
)
def test_bulk_arguments_are_checked_at_the_edge(generator, tmp_path, monkeypatch, kwargs, message):
    monkeypatch.chdir(tmp_path)
    kwargs = {"out": "run", "count": 10} | kwargs
    with pytest.raises(InvalidArgumentError, match=message):
        generate_run(generator, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, not even a folder


def test_generate_checks_its_callbacks(generator):
    with pytest.raises(InvalidArgumentError, match="progress must be None or a callable"):
        generator.generate(2, progress=5)
    with pytest.raises(InvalidArgumentError, match="cancel must be None or an event"):
        generator.generate(2, cancel=object())
    assert generator.generate(2, cancel=threading.Event(), progress=lambda done, total: None).shape == (2, 28, 28)


@pytest.mark.parametrize("weight", [10**400, -(10**400), float("nan"), True, "0.5", None])
def test_a_blend_weight_that_is_not_a_finite_number_is_refused(weight):
    with pytest.raises(InvalidArgumentError, match="blend weight of 'Bag' must be a finite number >= 0"):
        vae_gen.load(CONDITIONAL).generate(2, label={"Bag": weight})


def test_errors_show_long_values_cut_and_control_characters_escaped():
    text = shown("\x1b[31m" + "x" * 100_000)
    assert "\x1b" not in text and "\\x1b" in text
    assert len(text) < SHOWN_CHARACTERS + 40 and text.endswith(",010 characters)")
    with pytest.raises(InvalidArgumentError) as error:
        vae_gen.load(CONDITIONAL).generate(2, label="\x1b[2J" + "y" * 100_000)
    assert "\x1b" not in str(error.value) and len(str(error.value)) < 1000


# -- HTTP ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from vae_gen import serve as server

    model = vae_gen.load()
    settings = server.ServerSettings(models={model.name: model}, default_model=model.name, selftests={model.name: True})
    return TestClient(server.create_app(settings))


@pytest.mark.parametrize(
    "latents",
    [RAGGED_LATENTS, [[0.0] * 31], [[1e300] * 32], [[]], [[0.0] * 32, []]],
)
def test_http_decode_of_bad_latents_is_a_json_400(client, latents):
    response = client.post("/v1/decode", json={"latents": latents})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json" and "latents" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"n": True}, "n"), ({"n": "16"}, "n"), ({"seed": 1.0}, "seed"), ({"start": False}, "start"), ({"class": True}, "class"),
     ({"temperature": "1"}, "temperature")],
)
def test_http_numbers_are_strict(client, body, field):
    response = client.post("/v1/generate", json=body | {"format": "npy"})
    assert response.status_code == 422, response.text  # the request's shape is wrong, as FastAPI answers it
    assert response.json()["error"]["message"].startswith(field)


def test_http_messages_name_the_class_parameter(client):
    from vae_gen import serve as server

    conditional = vae_gen.load(CONDITIONAL)
    settings = server.ServerSettings(models={CONDITIONAL: conditional}, default_model=CONDITIONAL, selftests={CONDITIONAL: True})
    from fastapi.testclient import TestClient

    response = TestClient(server.create_app(settings)).post("/v1/generate", json={"n": 2})
    assert response.status_code == 400 and "give class one of" in response.json()["error"]["message"]
    assert "label=" not in response.json()["error"]["message"]


def test_a_chunked_body_over_the_limit_is_413(client):
    from vae_gen.serve.limits import MAX_BODY_BYTES

    def chunks():
        for _ in range(MAX_BODY_BYTES // 2**20 + 2):
            yield b" " * 2**20

    response = client.post("/v1/decode", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"


def test_the_bearer_scheme_is_case_insensitive_and_the_key_is_ascii():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from vae_gen import serve as server
    from vae_gen.cli.commands import main

    model = vae_gen.load()
    settings = server.ServerSettings(models={model.name: model}, default_model=model.name, selftests={model.name: True},
                                     api_key="s3cret")  # fmt: skip
    client = TestClient(server.create_app(settings))
    for header in ("Bearer s3cret", "bearer s3cret", "BEARER s3cret"):
        assert client.get("/v1/models", headers={"Authorization": header}).status_code == 200
    for header in ("Basic s3cret", "Bearer s3cre", "Bearers3cret", "Bearer s3cret2", ""):
        assert client.get("/v1/models", headers={"Authorization": header}).status_code == 401
    assert main(["serve", "--api-key", "clé"]) == 2
    assert main(["serve", "--api-key", " key"]) == 2


def test_an_uppercase_array_suffix_is_refused_not_made_a_folder(generator, tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"an array file ends in \.npy or \.npz, in lowercase"):
        generate_run(generator, tmp_path / "x.NPY", 4)
    assert not (tmp_path / "x.NPY").exists()


def test_a_killed_array_runs_temporary_is_cleaned_by_the_next_run_into_that_path(generator, tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".x.npy.{int(dead.stdout)}.0badc0de.tmp"
    stale.write_bytes(b"half an array")
    alive = tmp_path / f".x.npy.{1}.0badc0de.tmp"  # pid 1 runs: a live writer's temporary stays
    alive.write_bytes(b"another writer's")
    generate_run(generator, tmp_path / "x.npy", 4)
    assert not stale.exists() and alive.exists()
    assert np.load(tmp_path / "x.npy").shape == (4, 28, 28)


# -- sizes: every one a user can pass is bounded by the memory it implies, before any work ------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sample", "-n", "4", "--batch-size", "16384", "--out", "x.npy"], "--batch-size: must be an integer from 1 to 4096"),
        (["sample", "-n", "4", "--threads", "5000", "--out", "x.npy"], "--threads: must be an integer from 1 to 256"),
        (["sample", "-n", "4", "--scale", "100000", "--grid", "g.png"], "--scale: must be an integer from 1 to 64"),
        (["sample", "-n", "10000", "--scale", "8", "--grid", "g.png"], "--scale 8 makes a sheet of 10000 images"),
        (["sample", "-n", "4", "--workers", "5000", "--out", "d"], "--workers must be an integer from 0 to 64"),
        (["interpolate", "--steps", "100000000", "--out", "i.png"], "--steps: must be an integer from 2 to 2000"),
        (["interpolate", "--steps", "2000", "--scale", "16", "--out", "i.png"], "--scale 16 makes a sheet of 2000 images"),
        (["interpolate", "--fps", "1e-300", "--out", "i.gif"], "--fps: must be a number from 0.1 to 100"),
        (["manifold", "--size", "100000", "--out", "m.png"], "--size: must be an integer from 2 to 100"),
        (["walk", "--legs", "1000", "--frames-per-leg", "1000", "--out", "w.gif"], "makes 1,000,000 frames; at most 2,000"),
        (["walk", "--fps", "nan", "--out", "w.gif"], "--fps: must be a number from 0.1 to 100"),
        (["reconstruct", "x.png", "--variations", "100000", "--out", "r.png"], "--variations: must be an integer from 0 to 64"),
    ],
)
def test_sizes_are_bounded_before_work_starts(argv, message, tmp_path, monkeypatch, capsys):
    from vae_gen.cli.commands import main

    monkeypatch.chdir(tmp_path)
    try:
        status = main(argv)
    except SystemExit as exit:  # argparse's own refusals
        status = exit.code
    assert status == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda g: vae_gen.Generator(threads=10**6), "threads must be an integer from 1 to 256"),
        (lambda g: g.decode(np.zeros((2, 32), np.float32), batch_size=65536), "batch size must be an integer from 1 to 4096"),
        (lambda g: vae_gen.sampling.latent_paths.interpolate(np.zeros(2), np.ones(2), 10**8), "interpolation steps must be"),
        (lambda g: vae_gen.sampling.latent_paths.manifold(2, 10**5, 2.0), "manifold size must be an integer from 2 to 100"),
        (lambda g: vae_gen.sampling.latent_paths.random_walk(2, 0, 1000, 1000), "is 1,000,000 frames; at most 2,000"),
    ],
)
def test_the_api_bounds_the_same_sizes(generator, call, message):
    import vae_gen.sampling.latent_paths  # noqa: F401

    with pytest.raises(InvalidArgumentError, match=message):
        call(generator)


# -- a graph replaced on disk after load() ------------------------------------------------------------


@pytest.mark.parametrize("role", ["decoder", "encoder"])
def test_a_graph_swapped_after_load_is_refused_when_opened(tmp_path, role):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(vae_gen.load().folder, folder)
    lazy = vae_gen.Generator(folder, lazy=True)  # the card and checksums are read now; sessions open later
    other = vae_gen.load("fashion-mnist-residual32-int8").folder
    shutil.copy(other / f"{role}.onnx", folder / f"{role}.onnx")  # same inputs and outputs, other weights
    with pytest.raises(vae_gen.ModelIntegrityError, match=f"{role}.onnx: sha256 .* does not match model.json"):
        if role == "decoder":
            lazy.generate(1)
        else:
            lazy.encode(np.zeros((1, 28, 28), np.float32))


# -- two runs never mix in one folder ----------------------------------------------------------------


def run_sample(*argv: str) -> int:
    from vae_gen.cli.commands import main

    return main(["sample", "--quiet", "-n", "64", "--batch-size", "16", *argv])


def test_overwriting_a_folder_another_process_writes_into_is_refused(tmp_path, capsys):
    from vae_gen.output.locks import FolderLock

    out = tmp_path / "run"
    assert run_sample("--seed", "1", "--shard", "0/2", "--out", str(out)) == 0
    with FolderLock(out, "run", shared=True):  # shard 1/2 of seed 1, still writing
        assert run_sample("--seed", "2", "--overwrite", "--out", str(out)) == 2
        assert "another vae-gen process is writing a run into this folder" in capsys.readouterr().err
        assert run_sample("--seed", "1", "--shard", "1/2", "--out", str(out)) == 0  # the same run's writers share it
    assert json.loads((out / "vae-gen-run.json").read_text())["seed"] == 1


def test_a_partial_overwrite_of_another_run_is_refused_so_a_resume_cannot_mix_them(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_sample("--seed", "1", "--out", str(out)) == 0
    before = {p.name: p.read_bytes() for p in out.glob("*.png")}
    for part in (["--start", "32"], ["--shard", "1/2"]):
        assert run_sample("--seed", "2", "--overwrite", *part, "--out", str(out)) == 2
        assert "overwriting only images 32-63 of it would leave a folder of two runs" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == before
    assert run_sample("--seed", "2", "--overwrite", "--out", str(out)) == 0  # the whole run: one run again
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert {line["seed"] for line in manifest} == {2} and len(manifest) == 64
    assert all(p.read_bytes() != before[p.name] for p in out.glob("*.png"))


def test_an_overwrite_holds_the_folder_alone(tmp_path, capsys):
    from vae_gen.output.locks import FolderLock

    out = tmp_path / "run"
    assert run_sample("--seed", "1", "--out", str(out)) == 0
    with FolderLock(out, "run"):  # an overwrite of another run, still writing
        assert run_sample("--seed", "1", "--resume", "--out", str(out)) == 2
        assert "another vae-gen process is replacing the run in this folder" in capsys.readouterr().err
    assert not list(out.glob(".vae-gen-*.lock"))


# -- hand-edited or hostile model.json ------------------------------------------------------------------


def _golden(card, key, value):
    card["golden"][key] = value


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: _golden(c, "latents", [0.0] * 32), "'golden.latents' must hold N rows of 32 finite numbers"),
        (lambda c: _golden(c, "latents", [[[0.0] * 32]]), "'golden.latents' must hold"),
        (lambda c: _golden(c, "latents", [["a"] * 32]), "'golden.latents' must hold"),
        (lambda c: _golden(c, "latents", [[10**400] * 32]), "'golden.latents' must hold"),
        (lambda c: _golden(c, "images", [[0.0]]), "'golden.images' must hold 16 rows of 784 finite numbers"),
        (lambda c: _golden(c, "tolerance", "x"), "'golden.tolerance' must be float"),
        (lambda c: _golden(c, "tolerance", float("nan")), "'golden.tolerance' must be a finite number >= 0"),
        (lambda c: _golden(c, "tolerance", -1), "'golden.tolerance' must be a finite number >= 0"),
        (lambda c: c.__setitem__("value_range", [0, 10**400]), "value_range must be [low, high], finite numbers"),
        (lambda c: c.__setitem__("latent_dim", 10**400), None),
    ],
)
def test_a_hand_edited_model_json_is_one_model_card_error(tmp_path, edit, message):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(vae_gen.load().folder, folder)
    card = json.loads((folder / "model.json").read_text())
    edit(card)
    (folder / "model.json").write_text(json.dumps(card))
    with pytest.raises(vae_gen.ModelCardError, match=None if message is None else re.escape(message)):
        vae_gen.load(folder)


def test_model_json_nested_deeply_or_not_a_regular_file_is_refused_without_hanging(tmp_path):
    import os
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(vae_gen.load().folder, folder)
    (folder / "model.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(vae_gen.ModelCardError, match="nested too deeply"):
        vae_gen.load(folder)
    (folder / "model.json").unlink()
    os.mkfifo(folder / "model.json")  # opening a FIFO for reading would wait for a writer forever
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_load_error(folder)), daemon=True)
    worker.start()
    worker.join(10)
    assert outcome and "not a regular file" in outcome[0]


def _load_error(folder) -> str:
    try:
        vae_gen.load(folder)
    except vae_gen.ModelCardError as exc:
        return str(exc)
    return "loaded"


def test_info_shows_a_hand_edited_parity_record_without_failing(tmp_path, capsys):
    import shutil

    from vae_gen.cli.commands import main

    folder = tmp_path / "model"
    shutil.copytree(vae_gen.load().folder, folder)
    card = json.loads((folder / "model.json").read_text())
    card["parity"]["max_abs_diff"] = "\x1b[31mnot a number"
    card["test_metrics"] = {"neg_elbo": "x"}
    (folder / "model.json").write_text(json.dumps(card))
    assert main(["info", "--model", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "max |keras - onnx| ?" in out and "\x1b" not in out


# -- pictures Pillow opens but cannot read ---------------------------------------------------------------


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height grayscale pixels (its data is a few bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b"")


def _hostile_pictures(folder):
    from PIL import Image, PngImagePlugin

    pictures = {}
    Image.new("LAB", (8, 8)).save(folder / "lab.tif")
    pictures["lab.tif"] = "cannot read this picture"
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * (PngImagePlugin.MAX_TEXT_CHUNK + 10), zip=True)
    Image.new("L", (8, 8)).save(folder / "text.png", pnginfo=info)
    pictures["text.png"] = "cannot read this picture"
    (folder / "tall.png").write_bytes(_png_claiming(1, 30_000_000))
    pictures["tall.png"] = "a picture of 1x30000000 pixels; at most 25,000,000, and 20,000 a side"
    (folder / "bomb.png").write_bytes(_png_claiming(20_000, 20_000))
    pictures["bomb.png"] = "decompression bomb"
    (folder / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    pictures["garbage.png"] = "not a picture Pillow can read"
    return pictures


def test_a_picture_pillow_cannot_read_is_one_line_on_the_cli(tmp_path, capsys):
    from vae_gen.cli.commands import main

    for name, message in _hostile_pictures(tmp_path).items():
        assert main(["reconstruct", str(tmp_path / name), "--out", str(tmp_path / "r.png")]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err and name in err, err
    assert not (tmp_path / "r.png").exists()


def test_a_picture_pillow_cannot_read_is_a_json_4xx(client, tmp_path):
    for name, message in _hostile_pictures(tmp_path).items():
        response = client.post("/v1/reconstruct", files={"image": (name, (tmp_path / name).read_bytes())})
        expected = 413 if name in ("tall.png", "bomb.png") else 400
        assert response.status_code == expected, (name, response.text)
        assert message in response.json()["error"]["message"]


# -- disks and paths -----------------------------------------------------------------------------------------


def test_a_full_disk_while_writing_a_picture_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    import errno

    from PIL import Image

    from vae_gen.cli.commands import main

    def full(self, fp, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(fp))

    monkeypatch.setattr(Image.Image, "save", full)
    for argv in (["sample", "-n", "4", "--grid", "g.png"], ["manifold", "--size", "3", "--out", "m.png"],
                 ["interpolate", "--steps", "3", "--out", "i.png"], ["walk", "--legs", "2", "--frames-per-leg", "2",
                                                                    "--out", "w.gif"]):  # fmt: skip
        monkeypatch.chdir(tmp_path)
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "No space left on device" in err, err
        assert list(tmp_path.iterdir()) == []  # no picture, no temporary


def test_names_over_255_bytes_are_one_line_and_leave_nothing(tmp_path, monkeypatch, capsys):
    from vae_gen.cli.commands import main

    monkeypatch.chdir(tmp_path)
    long = "x" * 300
    assert main(["sample", "-n", "2", "--out", long]) == 2
    assert "File name too long" in capsys.readouterr().err
    assert main(["sample", "-n", "2", "--model", long]) == 2
    capsys.readouterr()
    assert list(tmp_path.iterdir()) == []


def test_a_class_name_too_long_for_a_folder_is_refused_before_the_run_record(tmp_path, capsys):
    import shutil

    from vae_gen.cli.commands import main

    model = tmp_path / "model"
    shutil.copytree(vae_gen.load(CONDITIONAL).folder, model)
    card = json.loads((model / "model.json").read_text())
    card["conditioning"]["classes"][0] = "é" * 200  # 400 bytes in UTF-8
    (model / "model.json").write_text(json.dumps(card))
    out = tmp_path / "out"
    assert main(["sample", "--model", str(model), "-n", "4", "--class", "all", "--layout", "by-class", "--out", str(out)]) == 2
    assert "a file name holds at most 255" in capsys.readouterr().err
    assert not out.exists() or list(out.iterdir()) == []


def test_uploads_decode_off_the_event_loop():
    """/healthz answers while large pictures decode: they are jobs of the worker pool, not of the event loop."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from vae_gen import serve as server

    model = vae_gen.load()
    settings = server.ServerSettings(models={model.name: model}, default_model=model.name, selftests={model.name: True})
    with TestClient(server.create_app(settings)) as client:  # one event loop for every request, as a server has
        _uploads_and_health(client)


def _uploads_and_health(client):
    import io
    import time

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (4800, 4800), 200).save(buffer, format="PNG")  # 23 MP, 33 kB: about 0.4 s to decode and shrink
    data = buffer.getvalue()
    statuses = []

    def upload():
        statuses.append(client.post("/v1/reconstruct", files={"image": ("big.png", data)}).status_code)

    uploads = [threading.Thread(target=upload) for _ in range(4)]
    for thread in uploads:
        thread.start()
    latencies = []
    while any(thread.is_alive() for thread in uploads):
        start = time.perf_counter()
        assert client.get("/healthz").status_code == 200
        latencies.append(time.perf_counter() - start)
    for thread in uploads:
        thread.join()
    assert statuses == [200] * 4 or set(statuses) <= {200, 429}
    assert len(latencies) >= 3 and max(latencies) < 0.3, latencies


# -- a request body that stalls ------------------------------------------------------------------


def test_a_stalled_request_body_is_408_and_frees_the_connection():
    pytest.importorskip("fastapi")
    import asyncio

    from vae_gen.serve.limits import BodyLimit

    read: list[bytes] = []

    async def app(scope, receive, send):  # reads the whole body, as an endpoint does, then answers 200
        while True:
            message = await receive()
            read.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def stall_after_first_part():
        parts = [{"type": "http.request", "body": b'{"n": 1', "more_body": True}]
        if parts and not read:
            return parts.pop()
        await asyncio.sleep(3600)  # the client sends nothing more

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def main():
        scope = {"type": "http", "headers": [], "method": "POST", "path": "/v1/generate"}
        await asyncio.wait_for(BodyLimit(app, limit=1000, idle_seconds=0.2)(scope, stall_after_first_part, send), 5)

    asyncio.run(main())
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert statuses == [408]
    body = json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
    assert body["error"]["code"] == "body_timeout" and "0.2 s" in body["error"]["message"]
    headers = dict(next(m for m in sent if m["type"] == "http.response.start")["headers"])
    assert headers[b"connection"] == b"close"
