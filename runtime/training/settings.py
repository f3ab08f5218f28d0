"""Every setting of a training run, declared and validated in one place, without TensorFlow.

`TrainSettings` is what `vae-gen train` builds from its options, what a
recipe file (`--config`) and a run folder's settings.json hold, and what
`vae_gen.train.fit.train` takes. Each field carries its rule (type and
allowed values, from `rules`) and its help text; the CLI builds its options
from them, so a choice list or a bound is never written twice. Settings that
earlier versions recorded (RETIRED) and the default batch size live here too.
This module imports neither TensorFlow nor numpy: a bad value is refused
before anything heavy loads.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError
from ..sampling.latents import MAX_SEED
from .rules import (
    SettingError,
    flag,
    fraction,
    image_size,
    integer,
    integer_choice,
    number,
    one_of,
    optional_text,
    setting,
    text,
)

ARCHITECTURES = ("dense", "conv", "residual")
#: The default data: Fashion-MNIST's IDX files. Any other value of `data` is a folder of images.
FASHION_MNIST = "fashion-mnist"
#: The share of a folder's images held out for testing, unless it has train/ and test/ subfolders.
DEFAULT_TEST_FRACTION = 0.1
#: Images larger than this on a side are surely a mistake for a VAE of this kind.
MAX_IMAGE_SIDE = 4096
PRECISIONS = ("float32", "mixed_bfloat16")
LR_SCHEDULES = ("constant", "cosine")
#: "elbo": the negative ELBO alone. "adversarial": the ELBO plus a discriminator's verdict on prior samples and
#: reconstructions, for sharp samples (vae_gen.train.adversarial).
OBJECTIVES = ("elbo", "adversarial")
#: What the discriminator judges against real images (`adversarial_images`).
ADVERSARIAL_IMAGES = ("both", "samples")


#: The batch size of a run that does not set one: TRAIN_BATCH_SIZE, halved while an epoch of the training set
#: would take fewer than MIN_STEPS_PER_EPOCH optimizer steps, but not below MIN_TRAIN_BATCH_SIZE (names apart from
#: vae_gen.sampling.generator.DEFAULT_BATCH_SIZE, the decoder's batch when generating). A folder of
#: 1,300 images at 128 gives 10 steps an epoch, and 20 epochs of that train a VAE to grey blobs; at 16, 74.
TRAIN_BATCH_SIZE, MIN_STEPS_PER_EPOCH, MIN_TRAIN_BATCH_SIZE = 128, 100, 16


def default_batch_size(train_images: int) -> int:
    """The batch size for `train_images` training images when the settings leave it to the data."""
    batch = TRAIN_BATCH_SIZE
    while batch > MIN_TRAIN_BATCH_SIZE and -(-train_images // batch) < MIN_STEPS_PER_EPOCH:
        batch //= 2
    return batch


@dataclass(frozen=True)
class TrainSettings:
    """One training run: architecture, optimization and data slice. Valid once constructed."""

    data: str = setting(FASHION_MNIST, text(), f"{FASHION_MNIST}, or a folder of images (PNG, JPEG, BMP, GIF, WebP), "
                        "flat or in one subfolder per class")  # fmt: skip
    #: (height, width) to resize a folder's images to; None: their own size, which must then agree.
    image_size: tuple[int, int] | None = setting(None, image_size(MAX_IMAGE_SIDE), "resize a folder's images to this size")
    #: 1 (grayscale) or 3 (RGB); None: RGB if any image of the folder has colour, else grayscale.
    channels: int | None = setting(None, integer_choice(1, 3), "1 (grayscale) or 3 (RGB) (default: from the images)")
    #: The share of a folder's images held out for testing; None: DEFAULT_TEST_FRACTION, or the folder's test/.
    test_fraction: float | None = setting(None, fraction(DEFAULT_TEST_FRACTION), "share of a folder's images held out "
                                          f"for testing (default {DEFAULT_TEST_FRACTION:g}, or the folder's test/ "
                                          "subfolder)")  # fmt: skip
    skip_bad: bool = setting(False, flag(), "leave unreadable image files out (counted) instead of stopping")
    #: Condition the encoder and decoder on the class label (a labelled source: Fashion-MNIST, or class subfolders).
    conditional: bool = setting(False, flag(), "class-conditional VAE: the label goes into the encoder and the decoder, "
                                "and vae-gen sample --class asks for a class; needs labelled data")  # fmt: skip
    arch: str = setting("dense", one_of(*ARCHITECTURES), "model architecture")
    latent_dim: int = setting(2, integer(1), "latent size")
    epochs: int = setting(30, integer(1), "training epochs")
    #: None: from the training set's size (default_batch_size), recorded as a number when training starts.
    batch_size: int | None = setting(None, integer(1, optional=True, null_means="from the data"), "images per training "
                                     f"step (default {TRAIN_BATCH_SIZE}, halved while an epoch would take fewer than "
                                     f"{MIN_STEPS_PER_EPOCH} steps, down to {MIN_TRAIN_BATCH_SIZE})")  # fmt: skip
    learning_rate: float = setting(1e-3, number(0, inclusive=False), "Adam's learning rate")
    #: Decoupled weight decay of the kernels (AdamW): each step shrinks them by learning rate x this.
    weight_decay: float = setting(0.0, number(0, inclusive=True), "decoupled weight decay of the kernels, as in AdamW; 0 is off")
    seed: int = setting(0, integer(0, MAX_SEED), "seed of the weights, the shuffling and the sampling")
    train_limit: int | None = setting(None, integer(1, optional=True), "use only the first N training images")
    test_limit: int | None = setting(None, integer(1, optional=True), "use only the first N test images")
    #: Epochs over which the KL weight of the training objective rises linearly to 1 (0: off).
    kl_warmup_epochs: int = setting(0, integer(0), "raise the KL weight linearly to 1 over this many epochs; 0 is off",
                                    option="--kl-warmup")  # fmt: skip
    #: beta of a beta-VAE (Higgins et al. 2017): the KL term's weight in the training objective only.
    kl_weight: float = setting(1.0, number(0, inclusive=False), "the KL term's weight in the training objective "
                               "(beta); above 1 the encoder fills N(0, I) more evenly, so prior samples land where the "
                               "decoder was trained; every reported -ELBO still weighs it by 1")  # fmt: skip
    #: "constant", or "cosine": decay from learning_rate to 1% of it over all steps.
    lr_schedule: str = setting("constant", one_of(*LR_SCHEDULES), "learning-rate schedule")
    #: Restore the weights of the epoch with the lowest test -ELBO (among full-KL epochs).
    keep_best: bool = setting(False, flag(), "keep the weights of the epoch with the lowest test -ELBO")
    #: Bitwise-reproducible kernels. Off, conv training runs about 3.5x faster on 2 cores
    #: (TensorFlow's deterministic kernels are single-threaded), and results differ run
    #: to run in the last digits; the seeds still fix the weights' start and the data order.
    deterministic: bool = setting(True, flag(), "bitwise-reproducible kernels; --no-deterministic (or --nondeterministic) "
                                  "trains about 3.5x faster on 2 cores, results then vary in the last digits")  # fmt: skip
    #: "float32" or "mixed_bfloat16". The saved models are float32 either way.
    precision: str = setting("float32", one_of(*PRECISIONS), "arithmetic of training; mixed_bfloat16 is about 1.75x "
                             "faster on CPUs with AMX or AVX-512 BF16, the saved models are float32 either way")  # fmt: skip

    #: "elbo" or "adversarial" (sharper samples, a worse -ELBO; docs/training.md).
    objective: str = setting("elbo", one_of(*OBJECTIVES), "training objective: elbo (the negative ELBO), or "
                             "adversarial (the ELBO plus a discriminator on prior samples and reconstructions: sharp "
                             "samples at a cost in -ELBO)")  # fmt: skip
    #: The adversarial gradient at the decoder's output layer, as a multiple of the ELBO's gradient there.
    adversarial_weight: float = setting(0.1, number(0, inclusive=False), "with --objective adversarial: the "
                                        "discriminator's gradient at the decoder's output layer as a multiple of the "
                                        "ELBO's gradient there")  # fmt: skip
    #: gamma of the discriminator's R1 penalty, gamma / 2 * E ||grad_x D(x)||^2 on real images in [0, 1].
    r1_gamma: float = setting(1.0, number(0, inclusive=True), "with --objective adversarial: the weight of the "
                              "discriminator's R1 gradient penalty on real images (higher: a smoother "
                              "discriminator)")  # fmt: skip
    #: Stride-2 convolutions in the discriminator, 64 channels doubling at each: 2 (the shipped sharp models')
    #: sees 10-pixel patches before its dense layer, 3 sees 22-pixel ones.
    discriminator_depth: int = setting(2, integer(2, 4), "with --objective adversarial: stride-2 convolutions in "
                                       "the discriminator (more: it judges larger shapes, not only textures)")  # fmt: skip
    #: "both": prior samples and reconstructions (VAE-GAN's, the first sharp models'); "samples": prior samples only.
    adversarial_images: str = setting("both", one_of(*ADVERSARIAL_IMAGES), "with --objective adversarial: what the "
                                      "discriminator judges against real images: both (prior samples and "
                                      "reconstructions) or samples (prior samples only: the reconstructions answer "
                                      "to the ELBO alone, and the images users draw get all of the discriminator's "
                                      "attention)")  # fmt: skip
    #: Weight of the class term (0: off): the discriminator's class head learns labelled real images; a conditional
    #: decoder's images are pushed towards their label (AC-GAN), an unconditional one's towards one clear class each
    #: with the classes evenly covered (CatGAN).
    class_weight: float = setting(0.0, number(0, inclusive=True), "with --objective adversarial, on labelled data: the "
                                  "discriminator also learns the class of real images, and the decoder's images are "
                                  "pushed to be recognised as their label (conditional) or as one clear class each, "
                                  "all classes evenly (unconditional), at this weight next to the adversarial term; "
                                  "0 is off")  # fmt: skip
    #: A model folder or run folder whose encoder.keras and decoder.keras start the run (recorded as given).
    init_from: str | None = setting(None, optional_text("new weights from the seed"), "start from the weights of "
                                    "this model or run folder (fine-tuning; installed shipped models hold no Keras "
                                    "files, so use a checkout's models/NAME); its architecture, latent size, image "
                                    "shape and classes must be the run's")  # fmt: skip

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            try:
                value = spec.metadata["rule"].check(getattr(self, spec.name))
            except ValueError as exc:
                raise SettingError(spec.name, str(exc)) from None
            object.__setattr__(self, spec.name, value)  # normalized: 1 -> 1.0 for a float setting
        if self.adversarial_images != "both" and self.objective != "adversarial":
            raise SettingError("adversarial_images", f"{self.adversarial_images} needs --objective adversarial (it "
                                                     "says what the discriminator judges)")  # fmt: skip
        if self.class_weight > 0 and self.objective != "adversarial":
            raise SettingError("class_weight", f"{self.class_weight} needs --objective adversarial (it weighs a term "
                                               "of the discriminator's class head)")  # fmt: skip
        if self.data == FASHION_MNIST:
            for name in ("image_size", "channels", "test_fraction"):
                if getattr(self, name) is not None:
                    raise SettingError(name, f"applies to a folder of images; {FASHION_MNIST} is 28x28 grayscale with "
                                             "its own test set")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values; `from_dict(to_dict())` gives the same settings."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainSettings:
        """A copy with some settings changed, validated like any other."""
        unknown = sorted(set(changes) - set(names()))
        if unknown:
            raise SettingError(unknown[0], f"is not a training setting; known: {', '.join(names())}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Any, source: str = "settings") -> TrainSettings:
        """Settings from parsed JSON (a recipe or a run's settings.json); missing ones take their defaults.

        A setting that vae-gen no longer has is accepted only at the value
        that meant what the code does now (RETIRED), so an old run folder's
        settings.json still reproduces its run, and no run silently loses an
        option it relied on.
        """
        where = f"{source}: "
        if not isinstance(data, Mapping):
            raise SettingError("settings", f"must be a JSON object, got {type(data).__name__}", where)
        current = set(names())
        unknown = sorted(set(data) - current - set(RETIRED))
        if unknown:
            raise SettingError(unknown[0], f"is not a training setting; known: {', '.join(names())}", where)
        try:
            settings = cls(**{key: value for key, value in data.items() if key in current})
        except SettingError as exc:
            raise SettingError(exc.name, exc.problem, where) from None
        for key in sorted(set(data) & set(RETIRED)):
            meaning_now = RETIRED[key](settings.arch)
            if _as_json(data[key]) != meaning_now:
                raise SettingError(
                    key,
                    f"{data[key]!r} was an option that vae-gen no longer has (removed after commit 8ce88c3; "
                    f"docs/experiments.md); only {meaning_now!r}, what the {settings.arch} architecture now does, is accepted",
                    where,
                )
        return settings

    @classmethod
    def from_record(cls, recorded: Mapping[str, Any], source: str = "settings") -> TrainSettings:
        """The settings a run folder or a model card recorded, as far as this vae-gen has them.

        For exporting and reporting runs, never for training: settings this
        vae-gen no longer has are dropped (the run's Keras files hold what they
        built), and so are the facts recorded beside the settings. Cards written
        before `data` was a setting hold under "data" the facts about the
        Fashion-MNIST they were trained on, which is what the default means.
        """
        kept = {key: value for key, value in recorded.items() if key in names()}
        if isinstance(kept.get("data"), dict):
            del kept["data"]
        return cls.from_dict(kept, source)

    @classmethod
    def from_file(cls, path: Path) -> TrainSettings:
        """Settings from a JSON file: a recipe, or the settings.json of a run folder."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidArgumentError(f"{path}: no such settings file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidArgumentError(f"{path}: not a readable JSON settings file ({exc})") from None
        return cls.from_dict(data, source=str(path))


#: Settings that earlier versions recorded and this one no longer has, by the value that means what the
#: code does now for an architecture: the experiments that did not help, switched off (docs/experiments.md),
#: and the residual architecture's hidden layer and 4x4 encoder map, now part of it.
RETIRED: dict[str, Callable[[str], Any]] = {
    "mirror": lambda arch: False,
    "decoder_blocks": lambda arch: 1,
    "encoder_noise": lambda arch: 0.0,
    "ema_momentum": lambda arch: 0.0,
    "decoder_hidden": lambda arch: [64] if arch == "residual" else [],
    "encoder_map": lambda arch: 4 if arch == "residual" else 7,
}


def names() -> list[str]:
    """The settings' names, in declaration order."""
    return [spec.name for spec in dataclasses.fields(TrainSettings)]


def option_of(name: str) -> str:
    """The `vae-gen train` option that sets the field `name`."""
    spec = next(spec for spec in dataclasses.fields(TrainSettings) if spec.name == name)
    return spec.metadata["option"] or "--" + name.replace("_", "-")


def _as_json(value: Any) -> Any:
    # A tuple recorded by an older version reads back from JSON as a list; 0 and 0.0 compare equal.
    return list(value) if isinstance(value, tuple) else value
