"""One run spread over a local Dask cluster writes what one process writes, byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from vae_gen.cli.commands import main

distributed = pytest.importorskip("distributed")


def folder_digests(folder: Path) -> dict[str, str]:
    files = [*folder.rglob("*.png"), folder / "manifest.jsonl", folder / "vae-gen-run.json"]
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_dask_run_equals_the_single_process_run(tmp_path):
    from vae_gen.scale_out import generate_with_dask

    single = tmp_path / "single"
    assert main(["sample", "--quiet", "-n", "1500", "--seed", "8", "--batch-size", "128", "--out", str(single)]) == 0
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        written = generate_with_dask(client, 1500, 8, tmp_path / "dask", batch_size=128, shards=5)
        assert written == 1500
        # Calling again with resume=True finishes (here: confirms) the job without writing anything.
        assert generate_with_dask(client, 1500, 8, tmp_path / "dask", batch_size=128, shards=5, resume=True) == 0
    assert folder_digests(tmp_path / "dask") == folder_digests(single)
    assert not list((tmp_path / "dask").glob("manifest-*.jsonl"))


def test_dask_run_of_a_conditional_model_by_class_with_guidance_equals_the_single_process_run(tmp_path):
    from vae_gen.scale_out import generate_with_dask

    model = str(Path(__file__).parent / "fixtures" / "tiny-conditional")
    single = tmp_path / "single"
    argv = ["sample", "--quiet", "--model", model, "-n", "300", "--seed", "2", "--class", "all", "--layout", "by-class",
            "--guidance", "1.5", "--batch-size", "16", "--out", str(single)]  # fmt: skip
    assert main(argv) == 0
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        written = generate_with_dask(client, 300, 2, tmp_path / "dask", model=model, label="all", layout="by-class",
                                     guidance=1.5, batch_size=16, shards=4)  # fmt: skip
    assert written == 300
    assert folder_digests(tmp_path / "dask") == folder_digests(single)
    assert len(list(single.glob("T-shirt_top/*.png"))) == 100
