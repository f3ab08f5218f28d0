"""model.json: the contract between the exporter and the runtime.

The exporter writes it and the runtime reads it, both through `ModelCard`.
The runtime trusts nothing else about a model folder: latent size, tensor
names, checksums and the golden checks all come from here, and a card that
is missing anything is refused rather than guessed at.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.checks import shown
from ..errors import ModelCardError, ModelIntegrityError
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
#: Channel counts the runtime turns into pictures: grayscale and RGB.
CHANNELS = (1, 3)
#: Where a model came from: trained by `vae-gen train`, or imported from a user's Keras files.
ORIGINS = ("trained", "keras")
#: An imported model's `origin.encoder_outputs` when the user's encoder has one output holding z_mean and z_log_var
#: side by side, in that order or the other; read by `vae-gen parity` and said by `vae-gen info`.
FUSED_ENCODER_OUTPUTS = ("fused", "fused-log-var-first")
#: What the user's decoder outputs: images in the value range, or logits (`origin.decoder_output`: "logits").
DECODER_OUTPUTS = ("probabilities", "logits")

#: A model.json larger than this is refused before it is read (the shipped ones are about 250 kB).
MAX_CARD_BYTES = 64 * 2**20


@dataclass(frozen=True)
class OnnxFile:
    """One ONNX graph of the folder, with its tensor names and checksum."""

    file: str
    sha256: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Conditioning:
    """A class-conditional model: the name of its label input and its classes, in label order."""

    #: The decoder's and encoder's second input: float32 [batch, len(classes)].
    input: str
    classes: tuple[str, ...]


@dataclass(frozen=True)
class Prior:
    """A learned prior: a graph from N(0, I) noise [batch, noise_dim] to latents [batch, latent_dim]."""

    graph: OnnxFile
    #: How it was made ("gmm": a Gaussian mixture; "two-stage": a second-stage VAE's decoder).
    kind: str
    noise_dim: int
    #: The first `unscaled_noise` noise coordinates are left alone by the temperature (a mixture's
    #: component choice); the rest are scaled by it.
    unscaled_noise: int
    #: How it was fitted (data, settings, scores): shown, not acted on.
    fitted: dict[str, Any]


@dataclass(frozen=True)
class GoldenCheck:
    """Fixed latents (and labels) and the decoder outputs they gave at export time.

    Lets a user's machine check its onnxruntime against the exporter's
    without TensorFlow: `images` are float32 [n, *image_shape], flattened;
    `labels` are the label rows fed with the latents (a conditional model), else empty.
    """

    latents: tuple[tuple[float, ...], ...]
    images: tuple[tuple[float, ...], ...]
    tolerance: float
    labels: tuple[tuple[float, ...], ...] = ()
    #: With a prior: noise rows [n, noise_dim] and the images prior -> decoder made of them (with `labels`).
    noise: tuple[tuple[float, ...], ...] = ()
    noise_images: tuple[tuple[float, ...], ...] = ()


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
        version = _require(data, "format_version", int, source)
        if version not in READABLE_VERSIONS:
            readable = ", ".join(map(str, READABLE_VERSIONS))
            raise ModelCardError(
                f"{source}: format_version {version!r} is not supported (this vae-gen reads {readable}); "
                "a newer vae-gen wrote it"
            )
        latent_dim = _require(data, "latent_dim", int, source)
        if latent_dim < 1:
            raise ModelCardError(f"{source}: latent_dim must be >= 1, got {latent_dim}")
        image_shape = tuple(_require(data, "image_shape", list, source))
        if len(image_shape) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in image_shape):
            raise ModelCardError(f"{source}: image_shape must be 3 positive integers [H, W, C], got {list(image_shape)}")
        if image_shape[2] not in CHANNELS:
            raise ModelCardError(f"{source}: image_shape's C must be 1 (grayscale) or 3 (RGB), got {image_shape[2]}")
        value_range = tuple(_require(data, "value_range", list, source))
        if len(value_range) != 2 or not all(_is_finite_number(v) for v in value_range) or not value_range[0] < value_range[1]:
            raise ModelCardError(
                f"{source}: value_range must be [low, high], finite numbers with low < high, got {shown(list(value_range))}"
            )
        golden = _require(data, "golden", dict, source)
        if version == 1:
            encoder: OnnxFile | None = _onnx_file(_require(data, "encoder", dict, source), "encoder", source)
            origin: dict[str, Any] = {"kind": "trained"}
        else:
            encoder_entry = _require(data, "encoder", (dict, type(None)), source)
            encoder = None if encoder_entry is None else _onnx_file(encoder_entry, "encoder", source)
            origin = _require(data, "origin", dict, source)
            if origin.get("kind") not in ORIGINS:
                kinds = ", ".join(ORIGINS)
                raise ModelCardError(f"{source}: field 'origin.kind' must be one of {kinds}, got {origin.get('kind')!r}")
        decoder = _onnx_file(_require(data, "decoder", dict, source), "decoder", source)
        conditioning = None
        if version >= 3:
            entry = _require(data, "conditioning", (dict, type(None)), source)
            conditioning = None if entry is None else _conditioning(entry, source)
        for graph, role in ((decoder, "decoder"), (encoder, "encoder")):
            if graph is not None:
                _check_inputs(graph, role, conditioning, source)
        prior = None
        if version >= 3:
            prior_entry = _require(data, "prior", (dict, type(None)), source)
            prior = None if prior_entry is None else _prior(prior_entry, latent_dim, source)
        golden_latents = _matrix(golden, "latents", source, width=latent_dim)
        golden_images = _matrix(golden, "images", source, rows=len(golden_latents), width=math.prod(image_shape))
        golden_tolerance = _require(golden, "tolerance", float, source, "golden.")
        if not _is_finite_number(golden_tolerance) or golden_tolerance < 0:
            raise ModelCardError(
                f"{source}: field 'golden.tolerance' must be a finite number >= 0, got {shown(golden_tolerance)}"
            )
        golden_noise, golden_noise_images = _golden_noise(golden, prior, source, len(golden_latents), math.prod(image_shape))
        golden_labels: tuple[tuple[float, ...], ...] = ()
        if conditioning is not None:
            golden_labels = _matrix(golden, "labels", source, rows=len(golden_latents), width=len(conditioning.classes))
        return cls(
            format_version=version,
            name=_require(data, "name", str, source),
            description=_require(data, "description", str, source),
            architecture=_require(data, "architecture", str, source),
            latent_dim=latent_dim,
            image_shape=(image_shape[0], image_shape[1], image_shape[2]),
            value_range=(float(value_range[0]), float(value_range[1])),
            opset=_require(data, "opset", int, source),
            decoder_flops=_require(data, "decoder_flops", int, source),
            decoder=decoder,
            encoder=encoder,
            keras_files=_require(data, "keras_files", dict, source),
            versions=_require(data, "versions", dict, source),
            training=_require(data, "training", dict, source),
            test_metrics=_require(data, "test_metrics", dict, source),
            parity=_require(data, "parity", dict, source),
            golden=GoldenCheck(
                latents=golden_latents,
                images=golden_images,
                tolerance=float(golden_tolerance),
                labels=golden_labels,
                noise=golden_noise,
                noise_images=golden_noise_images,
            ),
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


def _require(data: dict[str, Any], key: str, kind: type | tuple[type, ...], source: str, prefix: str = "") -> Any:
    if key not in data:
        raise ModelCardError(f"{source}: missing field '{prefix}{key}'")
    value = data[key]
    # bool is an int in Python; a card saying `"latent_dim": true` is still wrong.
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        expected = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise ModelCardError(f"{source}: field '{prefix}{key}' must be {expected}, got {type(value).__name__}")
    return value


def _conditioning(data: dict[str, Any], source: str) -> Conditioning:
    name = _require(data, "input", str, source, "conditioning.")
    classes = _require(data, "classes", list, source, "conditioning.")
    if len(classes) < 2 or not all(isinstance(c, str) and c for c in classes) or len(set(classes)) != len(classes):
        raise ModelCardError(f"{source}: field 'conditioning.classes' must list two or more different, non-empty class names")
    return Conditioning(name, tuple(classes))


def _prior(data: dict[str, Any], latent_dim: int, source: str) -> Prior:
    graph = _onnx_file(data, "prior", source)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ModelCardError(f"{source}: field 'prior' must name one input (the noise) and one output (z)")
    noise_dim = _require(data, "noise_dim", int, source, "prior.")
    unscaled = _require(data, "unscaled_noise", int, source, "prior.")
    if noise_dim < 1 or not 0 <= unscaled <= noise_dim:
        raise ModelCardError(f"{source}: field 'prior' needs noise_dim >= 1 and 0 <= unscaled_noise <= noise_dim, "
                             f"got {noise_dim} and {unscaled}")  # fmt: skip
    return Prior(graph, _require(data, "kind", str, source, "prior."), noise_dim, unscaled,
                 _require(data, "fitted", dict, source, "prior."))  # fmt: skip


def _golden_noise(
    golden: dict[str, Any], prior: Prior | None, source: str, rows: int, pixels: int
) -> tuple[tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]:
    """golden.noise and golden.noise_images: required with a prior, as many rows as golden.latents."""
    if prior is None:
        return (), ()
    return (_matrix(golden, "noise", source, rows=rows, width=prior.noise_dim),
            _matrix(golden, "noise_images", source, rows=rows, width=pixels))  # fmt: skip


def _is_finite_number(value: object) -> bool:
    """A JSON number (not a bool) that is finite as a float: 1e400 and 400-digit integers are not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _matrix(
    golden: dict[str, Any], key: str, source: str, rows: int | None = None, width: int | None = None
) -> tuple[tuple[float, ...], ...]:
    """golden.KEY: a list of `rows` lists of `width` finite numbers (each None: any, but all rows alike)."""
    value = _require(golden, key, list, source, "golden.")
    ok = all(isinstance(row, list) and all(_is_finite_number(v) for v in row) for row in value)
    widths = {len(row) for row in value} if ok else set()
    ok = ok and len(widths) <= 1 and (rows is None or len(value) == rows)
    ok = ok and (width is None or not value or widths == {width})
    if not ok:
        shape = f"{'N' if rows is None else rows} rows of {'equally many' if width is None else width} finite numbers"
        raise ModelCardError(f"{source}: field 'golden.{key}' must hold {shape}")
    return tuple(tuple(float(v) for v in row) for row in value)


def _check_inputs(graph: OnnxFile, role: str, conditioning: Conditioning | None, source: str) -> None:
    """A graph takes one input, or two (the first, then the label input) when the model is conditional."""
    expected = 1 if conditioning is None else 2
    if len(graph.inputs) != expected or (conditioning is not None and graph.inputs[1] != conditioning.input):
        want = "one input" if conditioning is None else f"two inputs, the second {conditioning.input!r} (conditioning.input)"
        raise ModelCardError(f"{source}: field '{role}.inputs' is {list(graph.inputs)}; expected {want}")


def _onnx_file(data: dict[str, Any], key: str, source: str) -> OnnxFile:
    prefix = f"{key}."
    names = {}
    for part in ("inputs", "outputs"):
        values = _require(data, part, list, source, prefix)
        if not values or not all(isinstance(v, str) for v in values):
            raise ModelCardError(f"{source}: field '{prefix}{part}' must be a non-empty list of names")
        names[part] = tuple(values)
    file = _require(data, "file", str, source, prefix)
    # The runtime only ever opens files inside the model folder.
    if Path(file).name != file:
        raise ModelCardError(f"{source}: field '{prefix}file' must be a plain file name, got {file!r}")
    return OnnxFile(file=file, sha256=_require(data, "sha256", str, source, prefix), **names)
