"""Random arguments to the CLI and the API: only documented outcomes, never a traceback."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vae_gen
from vae_gen import InvalidArgumentError
from vae_gen.cli.commands import main

# Tokens chosen to hit every parser branch while keeping valid runs small.
NUMBERS = [
    "0",
    "1",
    "2",
    "3",
    "-1",
    "x",
    "",
    "1.5",
    "nan",
    "inf",
    "-inf",
    "1e3",
    str(2**64),
    str(2**64 - 1),
    "0x10",
    "7/3",
    "0/2",
]
FLAGS = [
    "-n", "--seed", "--temperature", "--guidance", "--class", "--model", "--out", "--grid", "--scale", "--start",
    "--shard", "--batch-size", "--threads", "--workers", "--overwrite", "--resume", "--quiet", "--steps", "--method",
    "--from", "--to",
    "--from-seed", "--to-seed", "--size", "--extent", "--dims", "--legs", "--frames-per-leg", "--fps",
    "--variations", "--invert", "--json", "--bogus",
]  # fmt: skip
WORDS = [
    "out",
    "out.npy",
    "out.npz",
    "g.png",
    "a.gif",
    "x.jpg",
    "spherical",
    "linear",
    "auto",
    "nope",
    "fashion-mnist-dense2",
    ".",
]
COMMANDS = ["sample", "info", "models", "selftest", "interpolate", "manifold", "walk", "reconstruct", "frobnicate"]

tokens = st.lists(st.sampled_from(NUMBERS + FLAGS + WORDS), max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(COMMANDS), rest=tokens)
def test_cli_never_raises(command, rest, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("cli")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        code = main([command, *rest])
    except SystemExit as exc:  # argparse: usage errors exit 2, --help exits 0
        code = exc.code
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in err
    if code == 2 and "usage:" not in err:
        assert len(err.strip().splitlines()) == 1, err  # our errors are one line


values = st.one_of(
    st.integers(-5, 5), st.integers(2**63, 2**65), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.none(), st.text(max_size=3), st.just(np.int64(3)), st.just(1.0),
)  # fmt: skip


@pytest.fixture(scope="module")
def generator():
    return vae_gen.load()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=values, seed=values, temperature=values, start=values, batch_size=values, guidance=values)
def test_generate_raises_only_invalid_argument(generator, n, seed, temperature, start, batch_size, guidance):
    try:
        images = generator.generate(n, seed, temperature=temperature, start=start, batch_size=batch_size, guidance=guidance)
    except InvalidArgumentError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert images.dtype == np.uint8 and images.shape == (int(n), 28, 28)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=st.lists(st.integers(0, 4), min_size=0, max_size=3),
    dtype=st.sampled_from([np.float32, np.float64, np.float16, np.int32, np.bool_, object]),
    fill=st.floats(allow_nan=True, allow_infinity=True),
)
def test_decode_raises_only_invalid_argument(generator, shape, dtype, fill):
    try:
        with np.errstate(all="ignore"):  # the casts overflow on purpose
            z = np.full(shape, fill).astype(dtype)
    except (ValueError, OverflowError, TypeError):
        return
    try:
        out = generator.decode(z)
    except InvalidArgumentError:
        return
    assert out.shape == (shape[0], 28, 28, 1)
