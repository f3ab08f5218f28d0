"""Learned priors: vae-gen fit-prior writes a model folder with prior.onnx, and the runtime draws through it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vae_gen import Generator, InvalidArgumentError
from vae_gen.bulk import generate_run, merge_manifests
from vae_gen.cli.commands import main
from vae_gen.core.constants import GOLDEN_ROWS
from vae_gen.model.card import ModelCard

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def gmm_model(tiny_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prior") / "gmm"
    assert main(["fit-prior", str(tiny_model), "--kind", "gmm", "--components", "3", "--out", str(out)]) == 0
    return out


def test_the_folder_keeps_the_decoder_and_encoder_and_adds_a_checked_prior(tiny_model, gmm_model):
    for file in ("decoder.onnx", "encoder.onnx"):
        assert (gmm_model / file).read_bytes() == (tiny_model / file).read_bytes()
    gen = Generator(gmm_model)
    card = gen.card
    assert card.format_version == 3 and card.prior is not None
    assert (card.prior.kind, card.prior.noise_dim, card.prior.unscaled_noise) == ("gmm", 3, 1)
    assert card.prior.fitted["posterior_samples"] == 2000 and card.prior.fitted["components"] == 3
    assert card.parity["prior"]["max_abs_diff"] <= card.parity["prior"]["tolerance"]
    assert gen.selftest().passed and gen.selftest().checks == 2 * GOLDEN_ROWS  # the golden latents and noise rows
    assert ModelCard.from_dict(json.loads((gmm_model / "model.json").read_text())) == card
    assert card.test_metrics == Generator(tiny_model).card.test_metrics  # the same decoder and encoder


def test_prior_none_gives_exactly_the_models_images_of_before(tiny_model, gmm_model):
    before = Generator(tiny_model).generate(50, seed=4, temperature=0.8)
    assert np.array_equal(Generator(gmm_model, use_prior=False).generate(50, seed=4, temperature=0.8), before)
    assert not np.array_equal(Generator(gmm_model).generate(50, seed=4, temperature=0.8), before)


def test_with_a_prior_image_i_depends_on_seed_and_i_alone(gmm_model, tmp_path):
    gen = Generator(gmm_model)
    whole = gen.generate(40, seed=1, batch_size=8)
    assert np.array_equal(gen.generate(15, seed=1, start=25, batch_size=5), whole[25:])
    u = gen.noise(40, seed=1)
    assert u.shape == (40, 3) and np.array_equal(gen.decode_uint8(gen.to_latents(u)), whole)
    generate_run(gen, tmp_path / "full", 40, seed=1, batch_size=8)
    ranges = [generate_run(gen, tmp_path / "shards", 40, seed=1, batch_size=8, shard=(k, 3)) for k in range(3)]
    merge_manifests(tmp_path / "shards", 40, [(r.lo, r.hi) for r in ranges])
    for path in sorted((tmp_path / "full").iterdir()):
        assert path.read_bytes() == (tmp_path / "shards" / path.name).read_bytes(), path.name
    record = json.loads((tmp_path / "full" / "vae-gen-run.json").read_text())
    assert record["prior_sha256"] == gen.card.prior.graph.sha256
    with pytest.raises(Exception, match=r"holds a run with a different prior_sha256"):
        generate_run(Generator(gmm_model, use_prior=False), tmp_path / "full", 40, seed=1, batch_size=8, mode="resume")


def test_the_temperature_leaves_the_mixture_component_alone(gmm_model):
    gen = Generator(gmm_model)
    cold, warm = gen.noise(10, seed=2, temperature=0.5), gen.noise(10, seed=2)
    assert np.array_equal(cold[:, 0], warm[:, 0]) and np.allclose(cold[:, 1:], warm[:, 1:] * 0.5)


def test_cli_prior_option_and_info(tiny_model, gmm_model, tmp_path, capsys):
    none = ["sample", "--model", str(gmm_model), "-n", "8", "--prior", "none", "--out", str(tmp_path / "none.npy")]
    plain = ["sample", "--model", str(tiny_model), "-n", "8", "--out", str(tmp_path / "plain.npy")]
    assert main(none) == 0 and main(plain) == 0
    assert np.array_equal(np.load(tmp_path / "none.npy"), np.load(tmp_path / "plain.npy"))
    assert main(["info", "--model", str(gmm_model)]) == 0
    assert "prior:         gmm, prior.onnx (noise 3 -> z 2); --prior none draws z from N(0, I)" in capsys.readouterr().out
    for command in (["interpolate", "--steps", "3"], ["walk", "--legs", "2", "--frames-per-leg", "2"], ["manifold"]):
        out = tmp_path / ("x.gif" if command[0] == "walk" else "x.png")
        assert main([*command, "--model", str(gmm_model), "--out", str(out)]) == 0, command


def test_the_latent_tools_move_in_the_noise_space(gmm_model, tmp_path):
    from PIL import Image

    gen = Generator(gmm_model)
    assert main(["interpolate", "--model", str(gmm_model), "--from-seed", "1", "--to-seed", "2", "--steps", "2",
                 "--out", str(tmp_path / "i.png")]) == 0  # fmt: skip
    strip = np.asarray(Image.open(tmp_path / "i.png"))
    ends = gen.decode_uint8(gen.latents(1, seed=1)), gen.decode_uint8(gen.latents(1, seed=2))
    assert np.array_equal(strip[2:30, 2:30], ends[0][0]) and np.array_equal(strip[2:30, 32:60], ends[1][0])


def test_a_two_stage_prior(tiny_model, tmp_path):
    out = tmp_path / "two-stage"
    assert main(["fit-prior", str(tiny_model), "--kind", "two-stage", "--out", str(out)]) == 0
    gen = Generator(out)
    assert (gen.card.prior.kind, gen.card.prior.noise_dim, gen.card.prior.unscaled_noise) == ("two-stage", 2, 0)
    assert gen.selftest().passed and gen.card.parity["prior"]["max_abs_diff"] <= 1e-5
    assert gen.generate(5, seed=0).shape == (5, 28, 28)


def test_fit_prior_refuses_what_it_cannot_fit(tiny_model, gmm_model, tmp_path, capsys):
    assert main(["fit-prior", str(tiny_model), "--out", str(gmm_model)]) == 2
    assert "already exists" in capsys.readouterr().err
    conditional = Path(__file__).parent / "fixtures" / "tiny-conditional"
    assert main(["fit-prior", str(conditional), "--out", str(tmp_path / "c")]) == 2
    assert "is class-conditional; fit-prior fits unconditional models" in capsys.readouterr().err
    decoder_only = Path(__file__).parent / "fixtures" / "tiny-gray-20x12"
    assert main(["fit-prior", str(decoder_only), "--out", str(tmp_path / "d")]) == 2
    assert "has no encoder" in capsys.readouterr().err
    with pytest.raises(InvalidArgumentError, match=r"noise must be floats of shape \[n, 3\]"):
        Generator(gmm_model).to_latents(np.zeros((2, 2), np.float32))
