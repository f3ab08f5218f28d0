"""Class guidance (vae_gen.sampling.guidance) in the API, bulk runs and the CLI, on tests/fixtures/tiny-conditional
(no TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vae_gen import Generator, InvalidArgumentError
from vae_gen.bulk import generate_run, merge_manifests
from vae_gen.cli.commands import main
from vae_gen.output.run_layout import RUN_RECORD
from vae_gen.sampling.guidance import MAX_GUIDANCE
from vae_gen.sampling.latent_paths import interpolate

FIXTURE = Path(__file__).parent / "fixtures" / "tiny-conditional"


@pytest.fixture(scope="module")
def gen() -> Generator:
    return Generator(FIXTURE)


def test_guidance_zero_is_the_decoders_own_output_byte_for_byte(gen):
    plain = gen.generate(20, seed=5, label="all")
    assert np.array_equal(gen.generate(20, seed=5, label="all", guidance=0), plain)
    assert np.array_equal(gen.generate(20, seed=5, label="all", guidance=0.0, batch_size=3), plain)


def test_guidance_pushes_each_image_away_from_the_all_class_decode(gen):
    z = gen.latents(12, seed=2)
    conditioned = gen.decode(z, label="all")
    uniform = gen.decode(z, label=np.full((12, 3), 1 / 3, np.float32))
    for w in (0.5, 1.0, 3.0):
        expected = np.clip(conditioned + np.float32(w) * (conditioned - uniform), 0.0, 1.0)
        got = gen.decode(z, label="all", guidance=w)
        assert got.dtype == np.float32 and got.shape == conditioned.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
        assert got.min() >= 0.0 and got.max() <= 1.0
        assert not np.allclose(got, conditioned)  # it does change the images
        assert np.array_equal(gen.decode_uint8(z, label="all", guidance=w), gen.to_uint8(got))
    # The further from the average, the more: guidance grows the distance to the uniform decode.
    distances = [np.abs(gen.decode(z, label="all", guidance=w) - uniform).mean() for w in (0.0, 1.0, 2.0)]
    assert distances[0] < distances[1] < distances[2]


def test_a_guided_image_depends_only_on_seed_index_class_and_guidance(gen):
    whole = gen.generate(40, seed=7, label="all", guidance=1.5)
    assert np.array_equal(gen.generate(40, seed=7, label="all", guidance=1.5, batch_size=7), whole)
    assert np.array_equal(gen.generate(15, seed=7, start=25, label="all", guidance=1.5), whole[25:])
    pil = gen.generate_pil(3, seed=7, start=4, label="all", guidance=1.5)
    assert [np.asarray(image).tolist() for image in pil] == whole[4:7].tolist()
    streamed = np.concatenate([batch for _, batch in gen.iter_batches(40, seed=7, label="all", guidance=1.5, batch_size=16)])
    assert np.array_equal(streamed, whole)
    assert not np.array_equal(gen.generate(40, seed=7, label="all", guidance=0.5), whole)


@pytest.mark.parametrize("bad", [-0.1, MAX_GUIDANCE + 1, float("nan"), float("inf"), 10**400, "strong", True, None])
def test_bad_guidance_is_refused_naming_the_value_and_the_range(gen, bad):
    with pytest.raises(InvalidArgumentError, match=rf"guidance must be a number >= 0 and <= {MAX_GUIDANCE:g}, got "):
        gen.generate(2, label="circle", guidance=bad)


def test_an_unconditional_model_refuses_guidance_but_takes_zero():
    plain = Generator()
    with pytest.raises(InvalidArgumentError, match=r"guidance=1 needs a class-conditional model; .* has no classes"):
        plain.generate(2, guidance=1)
    with pytest.raises(InvalidArgumentError, match=r"needs a class-conditional model"):
        plain.decode(plain.latents(1), guidance=2)
    assert np.array_equal(plain.generate(3, seed=1, guidance=0), plain.generate(3, seed=1))


def test_a_guided_run_records_its_guidance_and_shards_and_resumes_byte_identically(gen, tmp_path):
    full = tmp_path / "full"
    generate_run(gen, full, 30, seed=3, label="all", guidance=1.0, batch_size=8)
    assert json.loads((full / RUN_RECORD).read_text())["guidance"] == 1.0
    expected = gen.generate(30, seed=3, label="all", guidance=1.0, batch_size=8)
    sharded = tmp_path / "sharded"
    ranges = [generate_run(gen, sharded, 30, seed=3, label="all", guidance=1.0, batch_size=8, shard=(k, 2)) for k in range(2)]
    merge_manifests(sharded, 30, [(r.lo, r.hi) for r in ranges])
    for name in sorted(p.name for p in full.iterdir()):
        assert (full / name).read_bytes() == (sharded / name).read_bytes(), name
    (full / "000011.png").unlink()
    assert generate_run(gen, full, 30, seed=3, label="all", guidance=1.0, batch_size=8, mode="resume").written == 1
    assert (full / "000011.png").read_bytes() == (sharded / "000011.png").read_bytes()
    with pytest.raises(Exception, match=r"holds a run with a different guidance"):
        generate_run(gen, full, 30, seed=3, label="all", batch_size=8, mode="resume")
    generate_run(gen, tmp_path / "run.npy", 30, seed=3, label="all", guidance=1.0, batch_size=8)
    assert np.array_equal(np.load(tmp_path / "run.npy"), expected)


def test_a_run_recorded_before_guidance_existed_resumes_as_unguided(gen, tmp_path):
    out = tmp_path / "old"
    generate_run(gen, out, 10, seed=1, label="square")
    record = json.loads((out / RUN_RECORD).read_text())
    del record["guidance"]  # as vae-gen wrote it before guidance
    (out / RUN_RECORD).write_text(json.dumps(record))
    (out / "000004.png").unlink()
    assert generate_run(gen, out, 10, seed=1, label="square", mode="resume").written == 1
    with pytest.raises(Exception, match=r"different guidance"):
        generate_run(gen, out, 10, seed=1, label="square", guidance=2, mode="resume")


def test_cli_guidance_writes_the_apis_images_and_refuses_bad_values(tmp_path, capsys):
    model = str(FIXTURE)
    argv = ["sample", "--model", model, "-n", "9", "--class", "all", "--guidance", "2", "--out", str(tmp_path / "a.npy")]
    assert main(argv) == 0
    assert np.array_equal(np.load(tmp_path / "a.npy"), Generator(FIXTURE).generate(9, label="all", guidance=2))
    for bad in ("-1", "1e400", "nan", "strong"):
        with pytest.raises(SystemExit) as exit_:
            main(["sample", "--model", model, "-n", "2", "--class", "0", "--guidance", bad, "--out", str(tmp_path / "b")])
        assert exit_.value.code == 2
        assert f"--guidance: must be a number from 0 to 10, got {bad!r}" in capsys.readouterr().err
    assert main(["sample", "-n", "2", "--guidance", "1", "--out", str(tmp_path / "c")]) == 2
    assert "--guidance 1 needs a class-conditional model" in capsys.readouterr().err
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


@pytest.mark.parametrize("command", [["walk", "--legs", "2", "--frames-per-leg", "2"], ["manifold", "--size", "2"]])
def test_cli_walk_and_manifold_take_guidance(command, tmp_path):
    suffix = ".gif" if command[0] == "walk" else ".png"
    plain, guided = tmp_path / f"plain{suffix}", tmp_path / f"guided{suffix}"
    base = [*command, "--model", str(FIXTURE), "--class", "square"]
    assert main([*base, "--out", str(plain)]) == 0
    assert main([*base, "--guidance", "3", "--out", str(guided)]) == 0
    assert plain.read_bytes() != guided.read_bytes()


def test_minus_zero_guidance_is_zero(gen):
    assert gen.check_guidance(-0.0) == 0.0 and str(gen.check_guidance(-0.0)) == "0.0"


def test_interpolate_with_guidance_decodes_the_apis_frames(tmp_path):
    out = tmp_path / "strip.png"
    argv = ["interpolate", "--model", str(FIXTURE), "--class", "square", "--guidance", "1.5", "--from-seed", "1",
            "--to-seed", "2", "--steps", "4", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    plain = tmp_path / "plain.png"
    assert main([arg for arg in argv[:-1] if arg not in ("--guidance", "1.5")] + [str(plain)]) == 0
    assert out.read_bytes() != plain.read_bytes()
    gen = Generator(FIXTURE)
    path = interpolate(gen.noise(1, 1)[0], gen.noise(1, 2)[0], 4, "spherical")
    frames = gen.decode_uint8(gen.to_latents(path), label="square", guidance=1.5)
    sheet = np.asarray(Image.open(out))
    assert np.array_equal(sheet[2:10, 2:10], frames[0]) and np.array_equal(sheet[2:10, -10:-2], frames[-1])


def test_a_resumed_guided_run_regenerates_its_grid_with_the_guidance(gen, tmp_path):
    out, grid = tmp_path / "run", tmp_path / "grid.png"
    generate_run(gen, out, 6, seed=2, label="all", guidance=2.0, grid=grid)
    first = grid.read_bytes()
    grid.unlink()
    generate_run(gen, out, 6, seed=2, label="all", guidance=2.0, grid=grid, mode="resume")
    assert grid.read_bytes() == first
