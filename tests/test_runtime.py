"""The runtime with the shipped default model: onnxruntime and numpy only."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import vae_gen
from vae_gen import InvalidArgumentError, ModelNotFoundError


@pytest.fixture(scope="module")
def generator() -> vae_gen.Generator:
    return vae_gen.load()


def test_default_model_is_shipped_and_listed():
    assert vae_gen.DEFAULT_MODEL in vae_gen.list_models()
    assert (vae_gen.resolve_model(None) / "model.json").is_file()


def test_shipped_model_passes_its_golden_checks(generator):
    result = generator.selftest()
    assert result.checks >= 4
    assert result.passed, result
    assert result.max_abs_diff <= result.tolerance


def test_generate_shape_dtype_and_range(generator):
    images = generator.generate(16, seed=0)
    assert images.shape == (16, 28, 28)
    assert images.dtype == np.uint8
    # Real garments: not all black, not all one value.
    assert images.max() > 128 and images.std() > 20


def test_same_seed_same_images_different_seed_different(generator):
    a = generator.generate(32, seed=7)
    assert np.array_equal(a, generator.generate(32, seed=7))
    assert np.array_equal(a, vae_gen.load().generate(32, seed=7))  # a fresh session too
    assert not np.array_equal(a, generator.generate(32, seed=8))


def test_image_depends_only_on_seed_and_index(generator):
    full = generator.generate(600, seed=3)  # spans three latent blocks
    assert np.array_equal(generator.generate(100, seed=3, start=250), full[250:350])
    assert np.array_equal(generator.generate(1, seed=3, start=599), full[599:])
    assert np.array_equal(generator.generate(10, seed=3), full[:10])


def test_latents_are_standard_normal(generator):
    z = generator.latents(20000, seed=0)
    assert z.shape == (20000, generator.latent_dim) and z.dtype == np.float32
    assert abs(float(z.mean())) < 0.03 and abs(float(z.std()) - 1) < 0.03


def test_temperature_scales_latents(generator):
    z1 = generator.latents(8, seed=5)
    assert np.allclose(generator.latents(8, seed=5, temperature=0.5), 0.5 * z1)


def test_decode_matches_generate(generator):
    z = generator.latents(5, seed=11)
    assert np.array_equal(generator.decode_uint8(z), generator.generate(5, seed=11))
    floats = generator.decode(z)
    assert floats.shape == (5, 28, 28, 1) and floats.dtype == np.float32
    assert floats.min() >= 0.0 and floats.max() <= 1.0


def test_pil_images(generator):
    pictures = generator.generate_pil(3, seed=0)
    assert [p.size for p in pictures] == [(28, 28)] * 3
    assert all(p.mode == "L" for p in pictures)
    assert np.array_equal(np.asarray(pictures[1]), generator.generate(3, seed=0)[1])


def test_encode_outputs_posterior(generator):
    images = generator.decode(generator.latents(4, seed=2))
    z_mean, z_log_var = generator.encode(images)
    assert z_mean.shape == z_log_var.shape == (4, generator.latent_dim)
    assert np.all(np.isfinite(z_mean)) and np.all(np.isfinite(z_log_var))


def test_threads_give_identical_results(generator):
    expected = {seed: generator.generate(40, seed=seed) for seed in range(8)}
    results: dict[int, np.ndarray] = {}

    def work(seed: int) -> None:
        results[seed] = generator.generate(40, seed=seed)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(results[s], expected[s]) for s in expected)


def test_lazy_session_is_created_on_first_use():
    lazy = vae_gen.load(lazy=True, threads=1)
    assert lazy.sessions.opened == {}
    assert lazy.generate(2, seed=0).shape == (2, 28, 28)


def test_progress_callback(generator):
    calls = []
    generator.generate(600, seed=0, batch_size=256, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(256, 600), (512, 600), (600, 600)]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 0}, "number of images"),
        ({"n": -3}, "number of images"),
        ({"n": 2.5}, "number of images"),
        ({"n": 4, "seed": -1}, "seed"),
        ({"n": 4, "seed": 2**64}, "seed"),
        ({"n": 4, "seed": "1"}, "seed"),
        ({"n": 4, "temperature": 0}, "temperature"),
        ({"n": 4, "temperature": float("nan")}, "temperature"),
        ({"n": 4, "temperature": float("inf")}, "temperature"),
        ({"n": 4, "temperature": 1e308}, "temperature must be a number > 0 and <= 100"),
        ({"n": 4, "start": -1}, "start"),
    ],
)
def test_bad_generate_arguments(generator, kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        generator.generate(**kwargs)


@pytest.mark.parametrize(
    "z, message",
    [
        (np.zeros((3, 50), np.float32), r"latents must have shape \[n, \d+\]"),
        (np.zeros(2, np.float32), r"latents must have shape \[n, \d+\]"),
        ("nan", "finite"),
        ("inf", "finite"),
        ("int", "floating"),
    ],
)
def test_bad_latents(generator, z, message):
    if isinstance(z, str):  # built for the model's latent size
        z = {"nan": np.full((1, generator.latent_dim), np.nan, np.float32),
             "inf": np.full((1, generator.latent_dim), np.inf, np.float32),
             "int": np.zeros((1, generator.latent_dim), np.int64)}[z]  # fmt: skip
    with pytest.raises(InvalidArgumentError, match=message):
        generator.decode(z)


def test_unknown_model_lists_shipped_ones():
    with pytest.raises(ModelNotFoundError, match=vae_gen.DEFAULT_MODEL):
        vae_gen.load("no-such-model")


def test_unknown_provider_lists_available_ones():
    with pytest.raises(InvalidArgumentError, match="CPUExecutionProvider"):
        vae_gen.load(providers=["NoSuchExecutionProvider"])


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_bad_thread_count(threads):
    with pytest.raises(InvalidArgumentError, match="threads"):
        vae_gen.load(threads=threads)


class CountingSession:
    """Stands in for the decoder's onnxruntime session, recording the batch size of each call."""

    def __init__(self, session):
        self.session, self.calls = session, []

    def run(self, names, feed):
        self.calls.append(len(next(iter(feed.values()))))
        return self.session.run(names, feed)


def test_batch_size_is_the_images_per_decoder_call(generator, monkeypatch):
    counting = CountingSession(generator.sessions.get("decoder"))
    monkeypatch.setitem(generator.sessions.opened, "decoder", counting)
    z = generator.latents(100, seed=0)
    reference = generator.decode(z, batch_size=100)
    assert counting.calls == [100]
    counting.calls.clear()
    assert np.allclose(generator.decode(z, batch_size=64), reference, atol=1e-6)
    assert counting.calls == [64, 36]
    counting.calls.clear()
    generator.generate(100, seed=0, batch_size=40)
    assert counting.calls == [40, 40, 20]
    counting.calls.clear()
    generator.generate(100, seed=0)
    assert counting.calls == [32, 32, 32, 4]


def test_generate_stops_at_the_next_batch_once_cancelled(generator):
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        cancel.set()  # as a Cancel button would, from another thread

    with pytest.raises(vae_gen.Cancelled):
        generator.generate(100, seed=0, batch_size=10, progress=progress, cancel=cancel)
    assert seen == [10]
    assert generator.generate(3, seed=0, cancel=threading.Event()).shape == (3, 28, 28)
