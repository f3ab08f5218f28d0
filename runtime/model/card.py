"""model.json: the contract between the exporter and the runtime, and the checks of the files it names.

The exporter writes it and the runtime reads it, both through `ModelCard`:
its format (FORMAT_VERSION and the versions it reads), the card as a whole
(`from_dict` puts together the parts that `card_fields` reads into the
dataclasses of `card_parts`), and the folder's ONNX files checked against it
(`load_verified`, `verified_bytes`). The runtime trusts nothing else about a
model folder: latent size, tensor names, checksums and the golden checks all
come from here, and a card that is missing anything is refused rather than
guessed at.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelCardError, ModelIntegrityError
from .card_fields import (
    read_conditioning_and_prior,
    read_encoder_and_origin,
    read_golden,
    read_image_shape,
    read_onnx_file,
    read_value_range,
    require_field,
)
from .card_parts import Conditioning, GoldenCheck, OnnxFile, Prior
from .onnx_inspect import refuse_external_data

#: The format this vae-gen writes. Bump it for any change an older vae-gen would misread; the runtime
#: reads every version up to it (docs/model-folder.md documents each one):
#:   1: the first format; every field required, the encoder always present.
#:   2: `encoder` may be null (a decoder-only model), `origin` says where the model came from
#:      (trained by vae-gen, or imported from Keras files), `training` and `test_metrics` may be
#:      empty ({}: not trained here, not measured), image_shape's C is 1 or 3.
#:   3: `conditioning` (null, or the label input and the class names of a class-conditional model,
#:      whose decoder and encoder take a second input); `golden.labels` holds the golden checks' labels;
#:      `prior` (null, or a third graph mapping N(0, I) noise to latents); `golden.noise` and
#:      `golden.noise_images` check noise -> prior -> decoder.
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
CARD_FILENAME = "model.json"

#: A model.json larger than this is refused before it is read (the shipped ones are about 250 kB).
MAX_CARD_BYTES = 64 * 2**20


@dataclass(frozen=True)
class ModelCard:
    """Typed, frozen view of one model.json. See `from_dict` for validation."""

    format_version: int
    name: str
    description: str
    architecture: str
    latent_dim: int
    image_shape: tuple[int, int, int]
    value_range: tuple[float, float]
    opset: int
    #: Floating-point operations to decode one image (2 x multiply-accumulates + biases).
    decoder_flops: int
    decoder: OnnxFile
    #: None for a decoder-only model: it generates, but cannot encode (reconstruct, evaluate).
    encoder: OnnxFile | None
    keras_files: dict[str, str]
    versions: dict[str, str]
    #: The settings and facts of the training run; {} for a model imported from Keras files.
    training: dict[str, Any]
    #: Test scores (nats per image); {} when none were measured.
    test_metrics: dict[str, Any]
    parity: dict[str, Any]
    golden: GoldenCheck
    #: {"kind": "trained"} or {"kind": "keras", ...}: see ORIGINS.
    origin: dict[str, Any] = field(default_factory=lambda: {"kind": "trained"})
    #: None for an unconditional model.
    conditioning: Conditioning | None = None
    #: None: latents are drawn from N(0, I) directly.
    prior: Prior | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def precision(self) -> str:
        """"int8" for a model written by `vae-gen quantize`, else "float32": what its cross-engine tolerance is."""
        return "int8" if "quantization" in self.extra else "float32"

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names, in label order; () for an unconditional model."""
        return () if self.conditioning is None else self.conditioning.classes

    @classmethod
    def from_dict(cls, data: Any, source: str = CARD_FILENAME) -> ModelCard:
        """Build a card from parsed JSON; ModelCardError names `source` and the bad field."""
        if not isinstance(data, dict):
            raise ModelCardError(f"{source}: expected a JSON object, got {type(data).__name__}")
        version = _format_version(data, source)
        latent_dim = require_field(data, "latent_dim", int, source)
        if latent_dim < 1:
            raise ModelCardError(f"{source}: latent_dim must be >= 1, got {latent_dim}")
        image_shape = read_image_shape(data, source)
        value_range = read_value_range(data, source)
        golden = require_field(data, "golden", dict, source)
        encoder, origin = read_encoder_and_origin(data, version, source)
        decoder = read_onnx_file(require_field(data, "decoder", dict, source), "decoder", source)
        conditioning, prior = read_conditioning_and_prior(data, version, latent_dim, (decoder, encoder), source)
        golden_check = read_golden(golden, latent_dim, math.prod(image_shape), conditioning, prior, source)
        return cls(
            format_version=version,
            name=require_field(data, "name", str, source),
            description=require_field(data, "description", str, source),
            architecture=require_field(data, "architecture", str, source),
            latent_dim=latent_dim,
            image_shape=image_shape,
            value_range=value_range,
            opset=require_field(data, "opset", int, source),
            decoder_flops=require_field(data, "decoder_flops", int, source),
            decoder=decoder,
            encoder=encoder,
            keras_files=require_field(data, "keras_files", dict, source),
            versions=require_field(data, "versions", dict, source),
            training=require_field(data, "training", dict, source),
            test_metrics=require_field(data, "test_metrics", dict, source),
            parity=require_field(data, "parity", dict, source),
            golden=golden_check,
            origin=origin,
            conditioning=conditioning,
            prior=prior,
            extra=data.get("extra", {}),
        )

    @property
    def files(self) -> tuple[OnnxFile, ...]:
        """The folder's ONNX graphs: the decoder, then the encoder and the prior where there are."""
        optional = (self.encoder, None if self.prior is None else self.prior.graph)
        return (self.decoder, *(graph for graph in optional if graph is not None))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict in this card's format; `from_dict(to_dict())` gives the same card."""
        out = dataclasses.asdict(self)
        # asdict keeps tuples; JSON has only lists, and round trips should compare equal.
        plain: dict[str, Any] = json.loads(json.dumps(out))
        if plain["prior"] is not None:  # the graph entry's fields sit beside the prior's own, as in the file
            plain["prior"] = plain["prior"].pop("graph") | plain["prior"]
        # A card read from an older format writes back as it was: without the fields it did not have.
        if self.format_version < 3:
            del plain["conditioning"], plain["prior"]
            del plain["golden"]["labels"], plain["golden"]["noise"], plain["golden"]["noise_images"]
        if self.format_version == 1:
            del plain["origin"]
        return plain

    @classmethod
    def load(cls, folder: Path) -> ModelCard:
        """Read and validate FOLDER/model.json."""
        path = Path(folder) / CARD_FILENAME
        try:
            if path.exists() and not path.is_file():  # a FIFO would block the read forever; a folder cannot be read
                raise ModelCardError(f"{path}: not a regular file")
            if path.exists() and path.stat().st_size > MAX_CARD_BYTES:
                raise ModelCardError(f"{path}: {path.stat().st_size:,} bytes; a model.json holds at most {MAX_CARD_BYTES:,}")
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            if (Path(folder) / "settings.json").is_file():
                raise ModelCardError(
                    f"{folder}: a training run, not a model folder; export it first: "
                    f"vae-gen export {folder} --out MODEL_FOLDER (or vae_gen.export.exporter.export_run)"
                ) from None
            raise ModelCardError(f"{path}: missing; a model folder needs its model.json") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelCardError(f"{path}: cannot be read ({exc})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelCardError(f"{path}: not valid JSON ({exc})") from None
        except RecursionError:
            raise ModelCardError(f"{path}: JSON nested too deeply") from None
        return cls.from_dict(data, source=str(path))

    def save(self, folder: Path) -> Path:
        path = Path(folder) / CARD_FILENAME
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def load_verified(folder: Path) -> ModelCard:
    """FOLDER's card, once every ONNX file it names is checked against it.

    Each file must be a regular file (not a symlink) whose sha256 matches
    the card and that keeps its weights inside (no external data); all is
    checked before onnxruntime sees a byte and before anything of the card
    is shown. ModelIntegrityError names the file and the mismatch.
    """
    card = ModelCard.load(folder)
    for entry in card.files:
        verified_bytes(folder, entry)
    return card


def verified_bytes(folder: Path, entry: OnnxFile) -> bytes:
    """The bytes of the graph `entry` names in FOLDER, once checked: a regular file whose sha256 matches the card,
    with no external data. Sessions are created from these very bytes, so a file replaced on disk after the card
    was read is refused, never run."""
    path = Path(folder) / entry.file
    if path.is_symlink() or not path.is_file():
        raise ModelIntegrityError(f"{path}: missing or not a regular file (named in model.json)")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != entry.sha256:
        raise ModelIntegrityError(
            f"{path}: sha256 {actual[:16]}... does not match model.json ({entry.sha256[:16]}...); "
            "the file is corrupt or was replaced"
        )
    refuse_external_data(data, str(path))
    return data


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _format_version(data: dict[str, Any], source: str) -> int:
    """format_version, one this vae-gen reads."""
    version: int = require_field(data, "format_version", int, source)
    if version not in READABLE_VERSIONS:
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise ModelCardError(
            f"{source}: format_version {version!r} is not supported (this vae-gen reads {readable}); "
            "a newer vae-gen wrote it"
        )
    return version
