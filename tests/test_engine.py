"""The engine fingerprint: recorded with every PNG run, checked when another process joins it, part of
serve's ETags; the cross-engine tolerance; the golden self-check per precision; threads by CPU affinity."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vae_gen
from vae_gen.bulk import generate_run
from vae_gen.cli.commands import main
from vae_gen.core.constants import GOLDEN_ROWS
from vae_gen.model import engine
from vae_gen.model.card import ModelCard
from vae_gen.model.engine import CROSS_ENGINE, engine_fingerprint
from vae_gen.output import run_record

OTHER_ENGINE = engine_fingerprint() | {"cpu": "sse"}


def sample(*argv: str) -> int:
    return main(["sample", "--quiet", *argv])


def test_the_fingerprint_names_the_kernel_choosing_cpu_features_and_versions():
    import onnxruntime

    fp = engine_fingerprint()
    assert set(fp) == {"machine", "cpu", "onnxruntime", "numpy"}
    assert fp["onnxruntime"] == onnxruntime.__version__ and fp["numpy"] == np.__version__
    known = set(engine.KERNEL_FEATURES.values()) | set(engine.KERNEL_FLAGS) | {"sse", "unknown"}
    assert fp["cpu"] and set(fp["cpu"].split(",")) <= known
    assert fp["onnxruntime"] in engine.describe(fp) and fp["cpu"] in engine.describe(fp)


def test_a_run_record_holds_the_engine_that_started_it(tmp_path):
    assert sample("-n", "8", "--out", str(tmp_path / "run")) == 0
    record = json.loads((tmp_path / "run" / "vae-gen-run.json").read_text())
    assert record["engine"] == engine_fingerprint() and record["seed"] == 0


@pytest.fixture
def half_run(tmp_path) -> Path:
    """Images 0..63 of a 128-image run, written by this engine; the rest to be added by another."""
    out = tmp_path / "run"
    assert sample("-n", "128", "--shard", "0/2", "--batch-size", "64", "--out", str(out)) == 0
    return out


@pytest.mark.parametrize("join", [["--shard", "1/2"], ["--start", "64"], ["--resume"]])
def test_joining_a_run_on_another_engine_warns(half_run, monkeypatch, caplog, join):
    monkeypatch.setattr(run_record, "engine_fingerprint", lambda: OTHER_ENGINE)
    assert sample("-n", "128", "--batch-size", "64", "--out", str(half_run), *join) == 0
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"the run was started on {engine.describe(engine_fingerprint())}" in warning
    assert "[sse]" in warning and "may differ" in warning
    assert len(list(half_run.glob("*.png"))) == 128


def test_the_warning_is_one_line_on_stderr(half_run):
    script = f"""
import sys
from vae_gen.output import run_record
from vae_gen.cli.commands import main
run_record.engine_fingerprint = lambda: {OTHER_ENGINE!r}
sys.exit(main(["sample", "--quiet", "-n", "128", "--batch-size", "64", "--out", {str(half_run)!r}, "--resume"]))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"{half_run}: the run was started on ")


def test_strict_engine_refuses_another_engine_and_writes_nothing(half_run, monkeypatch, capsys):
    monkeypatch.setattr(run_record, "engine_fingerprint", lambda: OTHER_ENGINE)
    assert sample("-n", "128", "--batch-size", "64", "--out", str(half_run), "--shard", "1/2", "--strict-engine") == 2
    err = capsys.readouterr().err
    assert "--strict-engine allows only the same engine" in err and len(err.strip().splitlines()) == 1
    assert len(list(half_run.glob("*.png"))) == 64


def test_the_same_engine_joins_silently_even_when_strict(half_run, caplog):
    assert sample("-n", "128", "--batch-size", "64", "--out", str(half_run), "--shard", "1/2", "--strict-engine") == 0
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_a_record_from_before_fingerprints_resumes_and_strict_refuses_it(half_run, capsys, caplog):
    record_path = half_run / "vae-gen-run.json"
    record = json.loads(record_path.read_text())
    del record["engine"]
    record_path.write_text(json.dumps(record))
    assert sample("-n", "128", "--batch-size", "64", "--out", str(half_run), "--start", "64", "--strict-engine") == 2
    assert "did not record its engine" in capsys.readouterr().err
    assert sample("-n", "128", "--batch-size", "64", "--out", str(half_run), "--start", "64") == 0
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_the_api_takes_strict_engine(half_run, monkeypatch):
    monkeypatch.setattr(run_record, "engine_fingerprint", lambda: OTHER_ENGINE)
    with pytest.raises(vae_gen.OutputError, match="strict_engine=True allows only the same engine"):
        generate_run(vae_gen.load(), half_run, 128, batch_size=64, shard="1/2", strict_engine=True)


def test_a_dask_run_over_mixed_engines_records_them_and_warns(tmp_path, monkeypatch, caplog):
    distributed = pytest.importorskip("distributed")
    from vae_gen import scale_out

    engines = itertools.cycle([engine_fingerprint(), OTHER_ENGINE])
    monkeypatch.setattr(scale_out, "engine_fingerprint", lambda: next(engines))
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        assert scale_out.generate_with_dask(client, 256, 3, tmp_path / "dask", batch_size=64, shards=4) == 256
    record = json.loads((tmp_path / "dask" / "vae-gen-run.json").read_text())
    assert record["engine"] == engine_fingerprint() and record["engines"] == [engine_fingerprint(), OTHER_ENGINE]
    assert "this run mixed 2 engines" in caplog.text
    # The record's extra fields do not stop the run from resuming.
    assert sample("-n", "256", "--seed", "3", "--batch-size", "64", "--out", str(tmp_path / "dask"), "--resume") == 0


def test_serve_etags_name_the_engine(monkeypatch):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from vae_gen import serve as server

    model = vae_gen.load()
    settings = server.ServerSettings(models={model.name: model}, default_model=model.name, selftests={model.name: True})
    client = TestClient(server.create_app(settings))
    url = f"/v1/models/{model.name}/images/7/3.png"
    here = client.get(url).headers["etag"]
    from vae_gen.serve import routes_images

    monkeypatch.setattr(routes_images, "engine_tag", lambda: "x86_64/sse/1.0.0/2.0.0")
    elsewhere = client.get(url).headers["etag"]
    assert here != elsewhere
    assert client.get(url, headers={"If-None-Match": here}).status_code == 200  # another engine's tag is not ours


# -- the tolerance and the golden self-check -------------------------------------------------


def test_the_tolerance_allows_one_level_on_few_pixels_and_refuses_more():
    rng = np.random.default_rng(0)
    expected = rng.random((8, 28, 28)).astype(np.float32)
    uint8 = np.rint(expected * 255).astype(np.uint8)
    tolerance = CROSS_ENGINE["float32"]
    one = uint8.copy()
    one[0, 0, 0] ^= 1  # one pixel, one level: what a .5 boundary does
    assert tolerance.violations(expected, expected + 5e-7, uint8, one) == []
    two = uint8.copy()
    two[0, 0, 0] = (int(two[0, 0, 0]) + 2) % 256
    assert "differs by" in tolerance.violations(expected, expected, uint8, two)[0]
    many = uint8.copy()
    many[:, :4, :4] ^= 1
    assert "pixels differ" in tolerance.violations(expected, expected, uint8, many)[0]
    assert tolerance.violations(expected, expected * np.nan, uint8, uint8)  # NaN is never within a tolerance


def copy_model(name: str, tmp_path: Path) -> Path:
    folder = tmp_path / name
    shutil.copytree(vae_gen.load(name).folder, folder)
    return folder


def with_golden_images_moved(folder: Path, by: float) -> None:
    card = ModelCard.load(folder)
    images = tuple(tuple(v + by for v in row) for row in card.golden.images)
    dataclasses.replace(card, golden=dataclasses.replace(card.golden, images=images)).save(folder)


@pytest.mark.parametrize(
    ("name", "within", "beyond"),
    [("fashion-mnist-residual32", 5e-6, 5e-5), ("fashion-mnist-residual32-int8", 0.05, 0.15)],
)
def test_the_golden_self_check_has_a_tolerance_per_precision(name, within, beyond, tmp_path):
    folder = copy_model(name, tmp_path)
    result = vae_gen.load(folder).selftest()
    precision = vae_gen.load(folder).card.precision
    assert result.passed and result.checks == GOLDEN_ROWS and result.tolerance == CROSS_ENGINE[precision].max_abs
    with_golden_images_moved(folder, within)
    assert vae_gen.load(folder).selftest().passed
    with_golden_images_moved(folder, beyond - within)
    failed = vae_gen.load(folder).selftest()
    assert not failed.passed and failed.max_abs_diff == pytest.approx(beyond, abs=1e-3)


def test_a_drift_on_a_few_pixels_of_a_few_images_fails_the_self_check(tmp_path):
    """What the 4-row check missed: the int8 model moving 3x its old tolerance on some pixels of some images."""
    folder = copy_model("fashion-mnist-residual32-int8", tmp_path)
    card = ModelCard.load(folder)
    rows = [list(row) for row in card.golden.images]
    rows[11][400] += 0.2  # one pixel of one of the 16 images
    dataclasses.replace(card, golden=dataclasses.replace(card.golden, images=tuple(map(tuple, rows)))).save(folder)
    assert not vae_gen.load(folder).selftest().passed


# -- threads by CPU affinity -------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2, reason="needs Linux and 2 CPUs")
def test_onnxruntime_threads_stay_on_the_cpus_the_process_may_use():
    script = """
import os, sys
os.sched_setaffinity(0, {0})
import vae_gen
from vae_gen.model.sessions import affinity_threads
assert affinity_threads() == 1, affinity_threads()
vae_gen.load().generate(256, 0)
escaped = []
for task in os.listdir("/proc/self/task"):
    with open(f"/proc/self/task/{task}/status") as status:
        allowed = next(line.split()[1] for line in status if line.startswith("Cpus_allowed_list"))
    if allowed != "0":
        escaped.append((task, allowed))
print(escaped)
sys.exit(1 if escaped else 0)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# -- running out of memory -----------------------------------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="ulimit -v is how the limit is set")
def test_running_out_of_memory_is_one_line_and_exit_2(tmp_path):
    """From a limit too small to start Python to one that suffices: never a traceback, an abort or a message
    from a library instead of ours."""
    command = [sys.executable, "-m", "vae_gen", "sample", "-n", "64", "--out", str(tmp_path / "x.npy"), "--overwrite"]

    def run(mib: int) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", f'ulimit -v {mib * 1024}; exec "$@"', "limit", *command],
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    seen = set()
    for mib in range(40, 420, 20):
        result = run(mib)
        if result.returncode < 0:
            # Rarely (about 1 run in 60 at one limit near 150 MiB) onnxruntime's C++ crashes on a failed allocation
            # while its library loads, before any of our code can see it; a second crash at the same limit is ours.
            result = run(mib)
        seen.add(result.returncode)
        if result.returncode == 0:
            continue
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, f"{mib} MiB: rc {result.returncode}: {result.stderr}"
        assert "error: out of memory" in lines[0] and ("--threads 1" in lines[0] or "needs at least" in lines[0])
    assert 2 in seen and 0 in seen  # the range spans both sides of the limit
