"""interpolate, manifold, walk and reconstruct: the latent paths and the commands over them."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DENSE2
from PIL import Image

import vae_gen
from vae_gen import InvalidArgumentError
from vae_gen.cli.commands import main
from vae_gen.sampling.latent_paths import interpolate, manifold, random_walk
from vae_gen.sampling.reconstruct import reconstruct_rows
from vae_gen.sampling.user_inputs import load_image, load_latent


@pytest.fixture(scope="module")
def generator():
    return vae_gen.load()


# -- latent paths -------------------------------------------------------------------


def test_interpolation_ends_and_shapes():
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 2.0, 0.0])
    for method in ("linear", "spherical"):
        path = interpolate(a, b, 5, method)
        assert path.shape == (5, 3) and path.dtype == np.float32
        assert np.allclose(path[0], a) and np.allclose(path[-1], b)
    assert np.allclose(interpolate(a, b, 3, "linear")[1], [0.5, 1.0, 0.0])


def test_spherical_interpolation_keeps_the_norm_of_equal_norm_ends():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(16), rng.standard_normal(16)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    norms = np.linalg.norm(interpolate(a, b, 9, "spherical"), axis=1)
    assert np.allclose(norms, np.linalg.norm(a), rtol=1e-5)
    # The straight line dips towards the centre.
    assert np.linalg.norm(interpolate(a, b, 9, "linear")[4]) < 0.9 * np.linalg.norm(a)


def test_interpolation_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="method"):
        interpolate(np.zeros(2), np.ones(2), 4, "cubic")
    with pytest.raises(InvalidArgumentError, match="interpolation steps must be an integer from 2 to 2000, got 1"):
        interpolate(np.zeros(2), np.ones(2), 1)


def test_manifold_layout():
    z = manifold(2, 3, 2.0)
    assert z.shape == (9, 2)
    assert z[0].tolist() == [-2.0, 2.0]  # top left: x low, y high
    assert z[2].tolist() == [2.0, 2.0]
    assert z[8].tolist() == [2.0, -2.0]
    wide = manifold(16, 4, 1.0, dims=(3, 7))
    assert np.all(np.delete(wide, [3, 7], axis=1) == 0)
    with pytest.raises(InvalidArgumentError, match="from 0 to 1"):
        manifold(2, 3, 1.0, dims=(0, 2))
    with pytest.raises(InvalidArgumentError, match="must differ"):
        manifold(4, 3, 1.0, dims=(1, 1))


def test_walk_is_smooth_looping_and_seeded():
    path = random_walk(8, seed=3, legs=4, frames_per_leg=10)
    assert path.shape == (40, 8)
    assert np.array_equal(path, random_walk(8, seed=3, legs=4, frames_per_leg=10))
    assert not np.array_equal(path, random_walk(8, seed=4, legs=4, frames_per_leg=10))
    steps = np.linalg.norm(np.diff(np.concatenate([path, path[:1]]), axis=0), axis=1)
    # Looping: the step from the last frame back to the first is no bigger than the others.
    assert steps[-1] <= steps.max()
    # Smooth: no step is more than a fraction of a typical latent's norm (about sqrt(8)).
    assert steps.max() < 0.5 * np.sqrt(8)


# -- user inputs --------------------------------------------------------------------


def test_load_image_any_size_and_mode(tmp_path):
    rgb = np.zeros((90, 60, 3), np.uint8)
    rgb[20:70, 15:45] = (200, 100, 50)  # a light object on black
    Image.fromarray(rgb).save(tmp_path / "photo.jpg")
    x = load_image(tmp_path / "photo.jpg")
    assert x.shape == (28, 28, 1) and x.dtype == np.float32
    assert x[14, 14, 0] > 0.3 and x[0, 0, 0] < 0.05  # not inverted: the border is dark
    # An RGB model of another size and range gets the picture in its own terms.
    colour = load_image(tmp_path / "photo.jpg", (12, 20, 3), (-1.0, 1.0))
    assert colour.shape == (12, 20, 3) and colour.min() >= -1 and colour.max() <= 1
    assert colour[6, 10, 0] > colour[6, 10, 2] > -1 + 0.1 and colour[0, 0].max() < -0.9  # orange on black


def test_load_image_inverts_dark_on_light(tmp_path):
    drawing = np.full((28, 28), 255, np.uint8)
    drawing[8:20, 8:20] = 0
    Image.fromarray(drawing).save(tmp_path / "drawing.png")
    auto = load_image(tmp_path / "drawing.png")
    assert auto[0, 0, 0] < 0.05 and auto[14, 14, 0] > 0.95
    assert load_image(tmp_path / "drawing.png", invert="no")[0, 0, 0] > 0.95
    # "auto" inverts for grayscale models only: an RGB model's pictures are taken as they are.
    assert load_image(tmp_path / "drawing.png", (28, 28, 3))[0, 0].min() > 0.95


def test_load_image_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("not a picture")
    with pytest.raises(InvalidArgumentError, match="not a picture Pillow can read"):
        load_image(tmp_path / "notes.txt")
    with pytest.raises(InvalidArgumentError, match="no such image"):
        load_image(tmp_path / "missing.png")


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros(3, np.float32), r"shape \[2\] or \[1, 2\]"),
        (np.zeros((2, 2), np.float32), r"shape \[2\] or \[1, 2\]"),
        (np.array([1, 2]), "floating point"),
        (np.array([np.nan, 0.0]), "finite"),
        (np.array([np.inf, 0.0]), "finite"),
    ],
)
def test_load_latent_errors(tmp_path, array, message):
    np.save(tmp_path / "z.npy", array)
    with pytest.raises(InvalidArgumentError, match=message):
        load_latent(tmp_path / "z.npy", 2)


def test_load_latent_never_unpickles(tmp_path):
    np.save(tmp_path / "z.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InvalidArgumentError, match="without pickles"):
        load_latent(tmp_path / "z.npy", 2)


# -- commands -----------------------------------------------------------------------


def test_interpolate_strip_between_seeds(tmp_path, generator):
    out = tmp_path / "strip.png"
    assert main(["interpolate", "--from-seed", "3", "--to-seed", "4", "--steps", "6", "--out", str(out)]) == 0
    strip = np.asarray(Image.open(out))
    assert strip.shape == (28 + 4, 6 * 30 + 2)
    assert np.array_equal(strip[2:30, 2:30], generator.generate(1, seed=3)[0])
    assert np.array_equal(strip[2:30, 5 * 30 + 2 : 5 * 30 + 30], generator.generate(1, seed=4)[0])


def test_interpolate_gif_between_latent_files(tmp_path):
    generator = vae_gen.load(DENSE2)
    np.save(tmp_path / "a.npy", np.array([-2.0, 0.0], np.float32))
    np.save(tmp_path / "b.npy", np.array([[2.0, 1.0]], np.float32))
    out = tmp_path / "path.gif"
    argv = ["interpolate", "--model", DENSE2, "--from", str(tmp_path / "a.npy"), "--to", str(tmp_path / "b.npy"), "--steps", "7"]
    assert main([*argv, "--method", "linear", "--out", str(out)]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 7 and gif.size == (28, 28)
        gif.seek(6)
        last = np.asarray(gif.convert("L"))
    assert np.array_equal(last, generator.decode_uint8(np.array([[2.0, 1.0]], np.float32))[0])


def test_manifold_command(tmp_path):
    out = tmp_path / "m.png"
    assert main(["manifold", "--size", "5", "--extent", "1.5", "--out", str(out), "--scale", "2"]) == 0
    assert Image.open(out).size == (2 * (5 * 30 + 2), 2 * (5 * 30 + 2))


def test_walk_command(tmp_path):
    out = tmp_path / "walk.gif"
    assert main(["walk", "--seed", "1", "--legs", "3", "--frames-per-leg", "4", "--out", str(out)]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 12


def test_reconstruct_rows(generator):
    images = generator.decode(generator.latents(3, seed=0))[..., 0]
    rows = reconstruct_rows(generator, images, variations=2, seed=0)
    assert rows.shape == (3, 4, 28, 28)
    assert np.array_equal(rows[:, 0], generator.to_uint8(images[..., None]))
    # A decoded image is near the decoder's range, so it reconstructs closely.
    assert np.abs(rows[:, 1].astype(int) - rows[:, 0]).mean() < 20
    assert np.array_equal(rows, reconstruct_rows(generator, images, variations=2, seed=0))


def test_reconstruct_command(tmp_path):
    assert main(["sample", "-n", "2", "--seed", "5", "--out", str(tmp_path / "in")]) == 0
    pictures = sorted(str(p) for p in (tmp_path / "in").glob("*.png"))
    out = tmp_path / "r.png"
    assert main(["reconstruct", *pictures, "--variations", "3", "--out", str(out)]) == 0
    assert Image.open(out).size == (5 * 30 + 2, 2 * 30 + 2)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["interpolate", "--out", "x.jpg"], "interpolate output must be a .png or .gif"),
        (["interpolate", "--from", "missing.npy", "--out", "x.png"], "no such latent file"),
        (["walk", "--out", "walk.png"], "walk output must be a .gif"),
        (["manifold", "--model", DENSE2, "--dims", "0", "5", "--out", "m.png"], "from 0 to 1, got 5"),
        (["reconstruct", "missing.png", "--out", "r.png"], "no such image file"),
    ],
)
def test_command_errors(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_pictures_of_16_bits_are_scaled_not_clipped(tmp_path):
    from vae_gen.sampling.user_inputs import picture_pixels

    ramp = (np.arange(28 * 28, dtype=np.uint32).reshape(28, 28) * 83).astype(np.uint16)  # 0 .. 65,000
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as picture:
        assert picture.mode.startswith("I")
        pixels = picture_pixels(picture, (28, 28, 1))[..., 0]
    assert np.abs(pixels.astype(int) - np.rint(ramp / 257.0)).max() <= 1
    assert (pixels == 255).mean() < 0.01


def test_pictures_are_turned_upright_as_their_exif_says(tmp_path):
    from vae_gen.sampling.user_inputs import picture_pixels

    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :10] = 255  # a white band on the left of a landscape picture
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: the camera says to rotate it a quarter clockwise to view it
    Image.fromarray(wide).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    with Image.open(tmp_path / "phone.jpg") as picture:
        upright = picture_pixels(picture, (40, 20, 3))
    assert upright.shape == (40, 20, 3)
    assert upright[:10].mean() > 200 and upright[20:].mean() < 30  # the band is now on top
