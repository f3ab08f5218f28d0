"""The Fashion-MNIST IDX loader, on the real files and on broken ones."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow  # vae_gen.train needs the train extra


@pytest.fixture(scope="module")
def data():
    from vae_gen.train.data import load_fashion_mnist

    return load_fashion_mnist(allow_download=False)


def test_real_files(data):
    assert data.train_images.shape == (60000, 28, 28) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (10000, 28, 28)
    assert data.train_labels.shape == (60000,) and data.test_labels.shape == (10000,)
    assert set(np.unique(data.test_labels)) == set(range(10))
    # Each class is exactly a tenth of the test set.
    assert np.bincount(data.test_labels).tolist() == [1000] * 10


def _mean_binary_entropy(images: np.ndarray) -> float:
    x = np.clip(images.astype(np.float64) / 255.0, 1e-7, 1 - 1e-7)
    return float(-(x * np.log(x) + (1 - x) * np.log1p(-x)).sum(axis=(1, 2)).mean())


def test_mean_binary_entropy_floor(data):
    """The -ELBO floor the quality issue quotes: the test pixels' own binary entropy, about 189.9."""
    assert 189 < _mean_binary_entropy(data.test_images) < 191


def test_training_images_have_a_floor_1_6_nats_lower_than_the_test_images(data):
    """188.28 against 189.86: about 1.6 of a model's train-test -ELBO gap is the data's, not overfitting."""
    gap = _mean_binary_entropy(data.test_images) - _mean_binary_entropy(data.train_images)
    assert 1.5 < gap < 1.7


def _write_idx(path: Path, magic: int, dims: tuple[int, ...], payload: bytes) -> None:
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload)


def test_truncated_file(tmp_path):
    from vae_gen.train.data import DataError, read_idx

    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    _write_idx(path, 0x801, (10000,), b"\x00" * 9999)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: truncated: 9999 data bytes"):
        read_idx(path, 0x801, (10000,))


def test_too_long_file(tmp_path):
    from vae_gen.train.data import DataError, read_idx

    path = tmp_path / "labels.gz"
    _write_idx(path, 0x801, (10000,), b"\x00" * 10001)
    with pytest.raises(DataError, match="longer than its header"):
        read_idx(path, 0x801, (10000,))


def test_wrong_magic(tmp_path):
    from vae_gen.train.data import DataError, read_idx

    path = tmp_path / "images.gz"
    _write_idx(path, 0x801, (10000, 28, 28), b"")
    with pytest.raises(DataError, match="magic number 0x00000801, expected 0x00000803"):
        read_idx(path, 0x803, (10000, 28, 28))


def test_lying_header_is_rejected_before_reading(tmp_path):
    from vae_gen.train.data import DataError, read_idx

    path = tmp_path / "images.gz"
    _write_idx(path, 0x803, (2**31, 28, 28), b"\x00" * 100)  # would be 1.6 TB
    with pytest.raises(DataError, match=r"header says dimensions \(2147483648, 28, 28\)"):
        read_idx(path, 0x803, (10000, 28, 28))


def test_not_gzip(tmp_path):
    from vae_gen.train.data import DataError, read_idx

    path = tmp_path / "images.gz"
    path.write_bytes(b"plain text, not gzip")
    with pytest.raises(DataError, match="not a readable gzip file"):
        read_idx(path, 0x803, (10000, 28, 28))


def test_explicit_folder_is_never_skipped(tmp_path):
    from vae_gen.train.data import DataError, find_data_dir

    with pytest.raises(DataError, match=r"--data-dir .*missing train-images-idx3-ubyte.gz.*apt-get install"):
        find_data_dir(tmp_path)


def test_env_variable_folder(tmp_path, monkeypatch, data):
    from vae_gen.train.data import FILES, find_data_dir

    for name in FILES:
        shutil.copy(data.source / name, tmp_path / name)
    monkeypatch.setenv("VAE_GEN_DATA", str(tmp_path))
    assert find_data_dir() == tmp_path


def test_nothing_found_says_how_to_get_it(tmp_path, monkeypatch):
    from vae_gen.train import data as data_module

    monkeypatch.delenv("VAE_GEN_DATA", raising=False)
    monkeypatch.setattr(data_module, "DEBIAN_DIR", tmp_path / "debian")
    monkeypatch.setattr(data_module, "KERAS_CACHE_DIR", tmp_path / "keras")
    with pytest.raises(data_module.DataError, match="apt-get install dataset-fashion-mnist"):
        data_module.find_data_dir(allow_download=False)
