"""The runtime never imports TensorFlow, tf2onnx, keras or the train/export code."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import HAS_TRAIN_EXTRA, RUNTIME_ONLY

FORBIDDEN = ("tensorflow", "keras", "tf2onnx", "onnx", "vae_gen.train", "vae_gen.export")

PROBE = """
import sys, tempfile, os
import vae_gen
from vae_gen.cli.commands import main
gen = vae_gen.load()
gen.generate(8, seed=0)
gen.selftest()
with tempfile.TemporaryDirectory() as d:
    assert main(["sample", "-n", "4", "--out", os.path.join(d, "s"), "--grid", os.path.join(d, "g.png")]) == 0
    assert main(["info"]) == 0
parts = [m.split(".") for m in sys.modules]
loaded = sorted(".".join(p) for p in parts if p[0] in {FORBIDDEN_ROOTS} or p[:2] in (["vae_gen", "train"], ["vae_gen", "export"]))
print("LOADED", loaded)
"""


def test_generation_imports_no_training_code():
    roots = {m for m in FORBIDDEN if "." not in m}
    code = PROBE.replace("{FORBIDDEN_ROOTS}", repr(roots))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout, result.stdout


@pytest.mark.skipif(not RUNTIME_ONLY, reason="only in the runtime-only environment (VAE_GEN_RUNTIME_ONLY=1)")
def test_tensorflow_is_not_installed():
    assert not HAS_TRAIN_EXTRA
    with pytest.raises(ImportError):
        import tensorflow  # noqa: F401


@pytest.mark.skipif(not RUNTIME_ONLY, reason="only in the runtime-only environment (VAE_GEN_RUNTIME_ONLY=1)")
def test_train_command_says_to_install_the_extra(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "vae_gen", "train", "--out", str(tmp_path / "run")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "pip install 'vae-gen[train]'" in result.stderr


def test_import_is_light_and_the_api_resolves_lazily():
    code = (
        "import sys, vae_gen\n"
        "heavy = [m for m in ('numpy', 'onnxruntime', 'PIL') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from vae_gen import Generator, ModelCard, list_models, DEFAULT_MODEL\n"
        "assert DEFAULT_MODEL in list_models() and Generator.__name__ == 'Generator'\n"
        "assert set(vae_gen.__all__) <= set(dir(vae_gen))\n"
        "try:\n"
        "    vae_gen.no_such_name\n"
        "except AttributeError as exc:\n"
        "    assert 'no_such_name' in str(exc)\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
