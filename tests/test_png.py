"""The PNG encoder of bulk runs: files any decoder reads back exactly, written all or nothing."""

from __future__ import annotations

import errno
import io
import os

import numpy as np
import pytest
from PIL import Image

from vae_gen.errors import InvalidArgumentError
from vae_gen.output.atomic import write_bytes_atomically
from vae_gen.output.images import png_bytes, save_png


@pytest.mark.parametrize("shape", [(28, 28), (1, 1), (5, 300), (7, 4, 3)])
def test_png_round_trips_through_pillow(shape):
    image = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    with Image.open(io.BytesIO(png_bytes(image))) as picture:
        picture.load()
        assert picture.mode == ("L" if len(shape) == 2 else "RGB")
        np.testing.assert_array_equal(np.asarray(picture), image)


def test_generated_images_round_trip(tmp_path):
    import vae_gen

    images = vae_gen.load().generate(16, seed=0)
    for i, image in enumerate(images):
        save_png(image, tmp_path / f"{i}.png")
        with Image.open(tmp_path / f"{i}.png") as picture:
            np.testing.assert_array_equal(np.asarray(picture), image)


@pytest.mark.parametrize(
    "image",
    [np.zeros((4, 4), np.float32), np.zeros((4, 4, 2), np.uint8), np.zeros((4,), np.uint8), np.zeros((2, 2, 2, 1), np.uint8)],
    ids=["float", "two-channels", "1-d", "4-d"],
)
def test_png_refuses_what_it_cannot_encode(image):
    with pytest.raises(InvalidArgumentError, match="a PNG needs uint8"):
        png_bytes(image)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "a.png"
    target.write_bytes(b"old")
    real_write = os.write

    def half_then_full(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        write_bytes_atomically(target, png_bytes(np.zeros((28, 28), np.uint8)))
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_short_writes_are_completed(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:100])))
    data = png_bytes(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8))
    write_bytes_atomically(tmp_path / "b.png", data)
    monkeypatch.undo()
    assert (tmp_path / "b.png").read_bytes() == data
