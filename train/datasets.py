"""Training and test images from either source, in one shape: Fashion-MNIST or a folder of the user's images.

Every dataset is uint8 [n, H, W, C] with int64 labels and its class names
(none for an unlabelled folder). Images stay uint8 here; the training input
pipeline and the scoring convert one batch at a time to float32 in [0, 1].
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vae_gen.training.settings import DEFAULT_TEST_FRACTION, FASHION_MNIST, TrainSettings

from .data import CLASS_NAMES, load_fashion_mnist
from .image_folder import ImageFolderError, list_images, read_split, split_candidates, survey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dataset:
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    #: Class names by label; empty for an unlabelled folder.
    class_names: tuple[str, ...]
    #: Where the images came from, for the run's record.
    source: str
    #: How the test images were chosen, for the run's record.
    test_split: str
    #: sha256 of the test images' file names, so that an export can tell the folder changed since training; "" for
    #: Fashion-MNIST.
    test_files: str = ""

    @property
    def image_shape(self) -> tuple[int, int, int]:
        height, width, channels = self.train_images.shape[1:]
        return int(height), int(width), int(channels)


def load_dataset(settings: TrainSettings, data_dir: Path | None = None) -> Dataset:
    """The images `settings.data` names, limited by train_limit and test_limit."""
    if settings.data == FASHION_MNIST:
        data = load_fashion_mnist(data_dir)
        dataset = Dataset(
            data.train_images[..., None], data.train_labels.astype(np.int64),
            data.test_images[..., None], data.test_labels.astype(np.int64),
            CLASS_NAMES, f"Fashion-MNIST ({data.source})", "Fashion-MNIST's test set",
        )  # fmt: skip
    else:
        dataset = read_image_folder(settings)
    return _limited(dataset, settings.train_limit, settings.test_limit)


def read_image_folder(settings: TrainSettings) -> Dataset:
    """Read settings.data, a folder of images, split into train and test (given, or seeded)."""
    folder = Path(settings.data).expanduser()
    train_dir, test_dir = folder / "train", folder / "test"
    given_split = train_dir.is_dir() and test_dir.is_dir()
    if given_split:
        if settings.test_fraction is not None:
            raise ImageFolderError(f"{folder}: has train/ and test/ folders, so test_fraction does not apply; drop it")
        train, class_names = list_images(train_dir)
        test, test_classes = list_images(test_dir)
        if test_classes != class_names:
            raise ImageFolderError(
                f"{folder}: train/ and test/ hold different classes ({', '.join(class_names) or 'none'} against "
                f"{', '.join(test_classes) or 'none'})"
            )
        everything, how = train + test, str(test_dir)
    else:
        everything, class_names = list_images(folder)
        fraction = DEFAULT_TEST_FRACTION if settings.test_fraction is None else settings.test_fraction
        how = f"{fraction:g} of the images, held out at random (seed {settings.seed})"
    size = None if settings.image_size is None else (settings.image_size[0], settings.image_size[1])
    good, (height, width), channels, bad = survey(everything, size, settings.channels, settings.skip_bad)
    if given_split:
        readable = {c.path for c in good}
        # In a seeded order, as a random split is, so that a limit takes a sample and not the first classes.
        rng = np.random.default_rng(settings.seed)
        train = [train[i] for i in rng.permutation(len(train)) if train[i].path in readable]
        test = [test[i] for i in rng.permutation(len(test)) if test[i].path in readable]
    else:
        train, test = split_candidates(good, fraction, settings.seed)
    shape = (height, width, channels)
    train_split, bad_train = read_split(train, shape, settings.skip_bad)
    test_split, bad_test = read_split(test, shape, settings.skip_bad)
    bad += bad_train + bad_test
    if bad:
        log.warning("skipped %d unreadable files (--skip-bad), the first: %s", len(bad), bad[0])
    if not len(train_split.images) or not len(test_split.images):
        counts = f"{len(train_split.images)} training and {len(test_split.images)} test images"
        raise ImageFolderError(f"{folder}: {counts}; need both")
    _log_counts(folder, class_names, train_split.labels, test_split.labels, shape)
    test_files = [c.path for c in test if c.path not in set(bad_test)]
    return Dataset(
        train_split.images, train_split.labels, test_split.images, test_split.labels, class_names, str(folder), how,
        files_digest(test_files, folder),
    )  # fmt: skip


#: A class with fewer training images than this is warned about.
FEW_TRAINING_IMAGES = 10


def _log_counts(folder: Path, class_names: tuple[str, ...], train: np.ndarray, test: np.ndarray, shape: tuple[int, ...]) -> None:
    h, w, c = shape
    kind = "RGB" if c == 3 else "grayscale"
    log.info("%s: %d training and %d test images, %dx%d %s", folder, len(train), len(test), h, w, kind)
    counts_train, counts_test = Counter(train.tolist()), Counter(test.tolist())
    for label, name in enumerate(class_names):
        log.info("  class %d %s: %d training, %d test images", label, name, counts_train[label], counts_test[label])
    for label, name in enumerate(class_names):
        if counts_train[label] < FEW_TRAINING_IMAGES:
            log.warning("warning: class %s has only %d training image(s); a VAE learns little of a class from fewer "
                        "than %d", name, counts_train[label], FEW_TRAINING_IMAGES)  # fmt: skip
        if len(test) and not counts_test[label]:
            log.warning("warning: class %s has no test images, so no test score covers it; add some to the folder's "
                        "test/ subfolder, or raise --test-fraction", name)  # fmt: skip


def _limited(dataset: Dataset, train_limit: int | None, test_limit: int | None) -> Dataset:
    return Dataset(
        dataset.train_images[:train_limit], dataset.train_labels[:train_limit],
        dataset.test_images[:test_limit], dataset.test_labels[:test_limit],
        dataset.class_names, dataset.source, dataset.test_split, dataset.test_files,
    )  # fmt: skip


@dataclass(frozen=True)
class EvaluationImages:
    """Test images to score a model on, uint8 [n, H, W, C], their labels int64 [n] and class names, and what they are."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    what: str


def evaluation_images(data: str, image_shape: tuple[int, int, int], data_dir: Path | None = None) -> EvaluationImages:
    """Test images to score a model on.

    data: "fashion-mnist" (its test set), or a folder: its test/ subfolder
    when it has train/ and test/, else all of its images.
    """
    if data == FASHION_MNIST:
        fashion = load_fashion_mnist(data_dir)
        images = fashion.test_images[..., None]
        if images.shape[1:] != image_shape:
            raise ImageFolderError(f"{data}: images of shape {list(images.shape[1:])}, the model takes {list(image_shape)}")
        return EvaluationImages(images, fashion.test_labels.astype(np.int64), CLASS_NAMES, FASHION_MNIST)
    folder = Path(data).expanduser()
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        folder = folder / "test"
    candidates, class_names = list_images(folder)
    good, _, _, _ = survey(candidates, image_shape[:2], image_shape[2], skip_bad=False, hint=FIX_IT)
    split = read_split(good, image_shape, skip_bad=False, hint=FIX_IT)[0]
    return EvaluationImages(split.images, split.labels, class_names, str(folder))


#: What to do about a file that cannot be read where it cannot be skipped (scoring: a test set stays whole).
FIX_IT = "fix or remove it"


def files_digest(files: list[Path], folder: Path) -> str:
    """sha256 of the files' paths relative to `folder`, sorted: the same files give the same digest."""
    names = sorted(str(path.relative_to(folder)) for path in files)
    return hashlib.sha256("\n".join(names).encode()).hexdigest()
