"""Hostile or damaged model folders: refused with a documented error, never a crash.

The mutation tests give a damaged file a *matching* checksum in model.json, as
a hostile folder would, so the bytes reach our protobuf check and onnxruntime.
Each load runs in a subprocess: a crash there fails the test instead of pytest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vae_gen
from vae_gen import ModelIntegrityError
from vae_gen.model.onnx_inspect import refuse_external_data

LOAD = (
    "import sys, vae_gen\n"
    "try:\n"
    "    g = vae_gen.load(sys.argv[1])\n"
    "    g.generate(2, seed=0)\n"
    "    print('LOADED')\n"
    "except vae_gen.VaeGenError as exc:\n"
    "    print('REFUSED', type(exc).__name__, exc)\n"
)
DOCUMENTED = {"ModelCardError", "ModelIntegrityError", "InvalidArgumentError"}


def load_in_subprocess(folder: Path) -> str:
    result = subprocess.run([sys.executable, "-c", LOAD, str(folder)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"crashed with {result.returncode}: {result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr, result.stderr
    # Nothing else may print: no banners from onnxruntime, only our one line.
    assert len(result.stdout.strip().splitlines()) == 1, result.stdout
    return result.stdout.strip()


def set_checksum(folder: Path, role: str) -> None:
    card = json.loads((folder / "model.json").read_text())
    card[role]["sha256"] = hashlib.sha256((folder / card[role]["file"]).read_bytes()).hexdigest()
    (folder / "model.json").write_text(json.dumps(card))


def test_shipped_models_have_no_external_data():
    for name in vae_gen.list_models():
        folder = vae_gen.resolve_model(name)
        for file in ("decoder.onnx", "encoder.onnx"):
            refuse_external_data((folder / file).read_bytes(), file)


def test_external_data_outside_the_folder_is_refused(shipped_model_copy):
    onnx = pytest.importorskip("onnx")
    path = shipped_model_copy / "decoder.onnx"
    model = onnx.load(path)
    tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", "../../../../etc/passwd"), ("offset", "0"), ("length", "64")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    path.write_bytes(model.SerializeToString())
    set_checksum(shipped_model_copy, "decoder")
    with pytest.raises(ModelIntegrityError, match="refers to external data files"):
        vae_gen.load(shipped_model_copy)


def test_malformed_protobuf_is_refused(shipped_model_copy):
    (shipped_model_copy / "decoder.onnx").write_bytes(b"\x0a\xff\xff\xff\xff\x0f not protobuf")
    set_checksum(shipped_model_copy, "decoder")
    with pytest.raises(ModelIntegrityError, match="not a well-formed ONNX protobuf"):
        vae_gen.load(shipped_model_copy)


def test_symlinked_onnx_is_refused(shipped_model_copy, tmp_path):
    real = tmp_path / "elsewhere.onnx"
    shutil.move(shipped_model_copy / "decoder.onnx", real)
    (shipped_model_copy / "decoder.onnx").symlink_to(real)
    with pytest.raises(ModelIntegrityError, match="not a regular file"):
        vae_gen.load(shipped_model_copy)


FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.data())
def test_mutated_onnx_bytes_never_crash(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("fuzz") / "model"
    shutil.copytree(vae_gen.resolve_model(None), folder)
    role = data.draw(st.sampled_from(["decoder", "encoder"]))
    path = folder / f"{role}.onnx"
    raw = bytearray(path.read_bytes())
    how = data.draw(st.sampled_from(["flip", "truncate", "splice"]))
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    elif how == "truncate":
        del raw[data.draw(st.integers(0, len(raw) - 1)) :]
    else:
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=64))
    path.write_bytes(bytes(raw))
    set_checksum(folder, role)
    outcome = load_in_subprocess(folder)
    assert outcome == "LOADED" or outcome.split()[1] in DOCUMENTED, outcome


@FUZZ
@given(data=st.data())
def test_mutated_model_json_never_crashes(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("fuzz") / "model"
    shutil.copytree(vae_gen.resolve_model(None), folder)
    raw = bytearray((folder / "model.json").read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    (folder / "model.json").write_bytes(bytes(raw))
    outcome = load_in_subprocess(folder)
    assert outcome == "LOADED" or outcome.split()[1] in DOCUMENTED, outcome
