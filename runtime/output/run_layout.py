"""What defines a bulk run and where its images go: the run spec, the index range, shards, file names.

A run is defined by its RunSpec (model, seed, count, temperature, batch
size, and for a conditional model the class label and guidance); image i of a run
depends only on that and i. A process writes the
images of one index range [lo, hi) of it: all of them, a tail (start), or a
shard. Shards are whole decode batches of the full run, so every image is
decoded exactly as one full run decodes it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.checks import shown
from ..errors import InvalidArgumentError
from ..model.sessions import DEFAULT_BATCH_SIZE, check_batch_size

if TYPE_CHECKING:
    from ..sampling.generator import Generator
    from ..sampling.labels import LabelSpec
    from ..sampling.request import Sampling

#: A PNG folder over this many images is split into subfolders of this many.
FILES_PER_FOLDER = 10_000
#: The record of a PNG run, in its folder: what --resume and shards check against.
RUN_RECORD = "vae-gen-run.json"
#: Where a PNG run's files go: "flat" (numbered, in subfolders of FILES_PER_FOLDER when the run is larger), or
#: "by-class" (CLASS/NNNNNN.png, one folder per class: a labelled dataset that image-folder readers take).
LAYOUTS = ("flat", "by-class")
#: What the record of a run made before a field existed means by its absence: an unconditional, flat run.
RECORD_DEFAULTS: dict[str, Any] = {"label": None, "layout": "flat", "prior_sha256": None, "guidance": 0.0}


@dataclass(frozen=True)
class RunSpec:
    """What determines every image of a run, and where its files go. `sampling` is the whole run (start 0), checked
    once when the spec is made; `record()` is what a PNG run's folder keeps of it."""

    model: str
    decoder_sha256: str
    sampling: Sampling
    batch_size: int
    layout: str = "flat"
    #: sha256 of the prior graph the noise goes through; None when latents are drawn from N(0, I) directly.
    prior_sha256: str | None = None

    @classmethod
    def for_generator(
        cls,
        generator: Generator,
        seed: int,
        count: int,
        temperature: float = 1.0,
        batch_size: int | None = None,
        label: LabelSpec | None = None,
        layout: str = "flat",
        guidance: float = 0.0,
    ) -> RunSpec:
        """The spec of a run of `generator`, its values checked here; batch_size None means the runtime's
        default, as the CLI uses. One label for the whole run: a run record must be able to hold it."""
        sampling = generator.sampling(count, seed, temperature=temperature, label=label, guidance=guidance, one_label=True)
        batch = DEFAULT_BATCH_SIZE if batch_size is None else check_batch_size(batch_size)
        if layout not in LAYOUTS:
            raise InvalidArgumentError(f"layout= must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        labels = sampling.labels
        if layout == "by-class":
            if labels is None:
                raise InvalidArgumentError(
                    f'layout="by-class" needs a class-conditional model; {generator.name!r} has no classes'
                )
            if isinstance(labels.spec, dict):
                raise InvalidArgumentError('layout="by-class" puts each image in its class\'s folder; a blend has none')
            class_folders(labels.classes)  # refuses names that would share a folder
        prior = generator.card.prior.graph.sha256 if generator.use_prior and generator.card.prior is not None else None
        return cls(generator.name, generator.card.decoder.sha256, sampling, batch, layout, prior)

    @property
    def count(self) -> int:
        """Images in the whole run."""
        return self.sampling.count

    def record(self) -> dict[str, Any]:
        """The run's record, as every version has written it (flat fields: the format of vae-gen-run.json)."""
        sampling = self.sampling
        return {
            "model": self.model, "decoder_sha256": self.decoder_sha256, "seed": sampling.seed, "count": sampling.count,
            "temperature": sampling.temperature, "batch_size": self.batch_size, "label": sampling.label,
            "layout": self.layout, "prior_sha256": self.prior_sha256, "guidance": sampling.guidance,
        }  # fmt: skip

    @classmethod
    def normalized_record(cls, recorded: Any) -> Any:
        """A run record as this version writes it: fields that earlier versions did not record take their defaults
        (an unconditional, flat run), so that their runs still resume."""
        if not isinstance(recorded, dict):
            return recorded
        return RECORD_DEFAULTS | recorded

    def relpath(self, index: int) -> str:
        """Where image `index` of this run lives inside its folder."""
        labels = self.sampling.labels
        if self.layout == "by-class":
            assert labels is not None
            return png_relpath(index, self.count, class_folders(labels.classes)[labels.names(index, index + 1)[0]])
        return png_relpath(index, self.count)


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 0 <= K < N."""
    try:
        index_text, total_text = text.split("/")
        index, total = int(index_text), int(total_text)
    except ValueError:
        raise InvalidArgumentError(f"shard= must be K/N with integers 0 <= K < N, got {text!r}") from None
    if not 0 <= index < total:
        raise InvalidArgumentError(f"shard= must be K/N with integers 0 <= K < N, got {text!r}")
    return index, total


def shard_range(count: int, index: int, total: int, batch_size: int) -> tuple[int, int]:
    """Shard `index` of `total`: whole batches of the full run, so shards decode exactly its batches."""
    batches = -(-count // batch_size)
    first, last = index * batches // total, (index + 1) * batches // total
    return min(first * batch_size, count), min(last * batch_size, count)


def run_range(count: int, batch_size: int, start: int = 0, shard: str | tuple[int, int] | None = None) -> tuple[int, int]:
    """The images [lo, hi) that one process writes of a `count`-image run: from `start`, or one shard."""
    if shard is not None:
        if start:
            raise InvalidArgumentError(f"give start= or shard=, not both (start={start}, shard={shard!r})")
        index, total = parse_shard(shard) if isinstance(shard, str) else _shard_pair(shard)
        if not 0 <= index < total:
            raise InvalidArgumentError(f"shard= must be (K, N) with integers 0 <= K < N, got {shard!r}")
        lo, hi = shard_range(count, index, total, batch_size)
        if lo == hi:
            batches = -(-count // batch_size)
            raise InvalidArgumentError(
                f"shard={index}/{total} is empty: a run of {count} images has {batches} batches of {batch_size}, "
                f"fewer than {total} shards"
            )
        return lo, hi
    if not 0 <= start < count:
        raise InvalidArgumentError(f"start={start} must be below count={count}")
    return start, count


def _shard_pair(shard: object) -> tuple[int, int]:
    """shard= given as a pair: two integers (K, N), not bools, floats or text."""
    pair = tuple(shard) if isinstance(shard, (tuple, list)) else ()
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise InvalidArgumentError(f'shard= must be "K/N" or a pair (K, N) of integers 0 <= K < N, got {shown(shard)}')
    return pair[0], pair[1]


def png_relpath(index: int, count: int, class_folder: str | None = None) -> str:
    """Where image `index` of a `count`-image run lives inside its folder (in `class_folder`, by class)."""
    name = f"{index:0{max(6, len(str(count - 1)))}d}.png"
    if class_folder is not None:
        return f"{class_folder}/{name}"
    if count <= FILES_PER_FOLDER:
        return name
    folders = (count - 1) // FILES_PER_FOLDER
    return f"{index // FILES_PER_FOLDER:0{max(4, len(str(folders)))}d}/{name}"


def manifest_name(lo: int, hi: int, count: int) -> str:
    """The manifest of images [lo, hi): manifest.jsonl for the whole run, else one per range."""
    return "manifest.jsonl" if (lo, hi) == (0, count) else f"manifest-{lo}-{hi}.jsonl"


#: The longest file or folder name most filesystems take (ext4, APFS, NTFS: 255 bytes or UTF-16 units).
MAX_NAME_BYTES = 255
#: Characters that cannot be part of a folder name on some system.
UNSAFE_IN_NAMES = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


@functools.lru_cache(maxsize=16)
def class_folders(classes: tuple[str, ...]) -> dict[str, str]:
    """Each class's folder name in a by-class run: the name with "/" and other unsafe characters as "_"
    ("T-shirt/top" -> "T-shirt_top"); refused when two classes would share a folder."""
    folders: dict[str, str] = {}
    for name in classes:
        folder = UNSAFE_IN_NAMES.sub("_", name).strip()
        if folder in ("", ".", "..") or folder.startswith("."):
            folder = "_" + folder
        folders[name] = folder
    too_long = [folder for folder in folders.values() if len(folder.encode("utf-8")) > MAX_NAME_BYTES]
    if too_long:
        raise InvalidArgumentError(
            f"class folder {shown(too_long[0])} is {len(too_long[0].encode('utf-8'))} bytes long; a file name holds at most "
            f"{MAX_NAME_BYTES} (use the flat layout)"
        )
    if len(set(folders.values())) != len(folders):
        raise InvalidArgumentError(f"classes {list(classes)} would share folders ({list(folders.values())}) in a by-class run")
    return folders
