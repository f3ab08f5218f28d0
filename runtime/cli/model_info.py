"""The `vae-gen` commands that describe models: info (one model's card), models (the shipped ones) and
selftest (the golden checks).

`info` shows a card as a hostile model.json cannot abuse it: every text is
made printable and cut (`_printable`), every number is shown only if it is
one, else "?". `models` lists each shipped model in a line and counts the
damaged ones; `selftest` runs a model's golden latents and compares.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, TypeGuard

from ..core.checks import shown
from ..core.exit_codes import USER_ERROR
from ..errors import VaeGenError
from ..model.card import ModelCard, load_verified
from ..model.card_parts import OnnxFile
from ..model.store import DEFAULT_MODEL, list_models, resolve_model
from ..sampling.generator import Generator


def add_model_commands(commands: Any, model_help: str) -> None:
    """`vae-gen info`, `vae-gen models` and `vae-gen selftest`."""
    info = commands.add_parser("info", help="print a model's card")
    info.add_argument("--model", help=model_help)
    info.add_argument("--json", action="store_true", help="print the whole model.json")
    info.set_defaults(run=_cmd_info)

    models = commands.add_parser("models", help="list the shipped models")
    models.set_defaults(run=_cmd_models)

    selftest = commands.add_parser("selftest", help="check the model against the golden outputs in its model.json")
    selftest.add_argument("--model", help=model_help)
    selftest.set_defaults(run=_cmd_selftest)


def _cmd_info(args: argparse.Namespace) -> int:
    folder = resolve_model(args.model)
    card = load_verified(folder)  # a damaged folder is an error, not a card to show
    if args.json:
        print(json.dumps(card.to_dict(), indent=2))
        return 0
    metrics = ", ".join(f"{_printable(k)} {v:.2f}" for k, v in card.test_metrics.items() if isinstance(v, float))
    settings = ", ".join(f"{_printable(k)}={_printable(v)}" for k, v in card.training.items() if isinstance(v, (int, float, str)))
    lines = [
        f"name:          {_printable(card.name)}",
        f"description:   {_printable(card.description, INFO_TEXT_CHARACTERS)}",
        f"folder:        {folder}",
        f"format:        {card.format_version}",
        f"architecture:  {card.architecture}, latent_dim {card.latent_dim}",
        f"images:        {'x'.join(map(str, card.image_shape))}, values {card.value_range[0]:g}..{card.value_range[1]:g}",
        f"decoder:       {_graph_line(card.decoder)}",
        f"encoder:       {_graph_line(card.encoder)}",
        f"classes:       {_classes_line(card.classes)}",
        f"prior:         {_prior_line(card)}",
        f"opset:         {card.opset}, decoder {card.decoder_flops / 1e6:.2f} MFLOP per image",
        f"test metrics:  {f'{metrics} (nats per image)' if metrics else 'none measured'}",
        f"samples:       {_samples_line(card.extra.get('sample_quality'))}",
        _parity_line(card.parity),
        f"origin:        {_origin_line(card.origin)}",
    ]
    if settings:
        lines.append(f"trained with:  {settings}")
    lines.append(f"exported with: {', '.join(f'{k} {v}' for k, v in card.versions.items())}")
    print("\n".join(lines))
    return 0


def _prior_line(card: ModelCard) -> str:
    if card.prior is None:
        return "N(0, I) (no prior graph)"
    prior = card.prior
    return (f"{prior.kind}, {prior.graph.file} (noise {prior.noise_dim} -> z {card.latent_dim}); "
            "--prior none draws z from N(0, I)")  # fmt: skip


def _classes_line(classes: tuple[str, ...]) -> str:
    if not classes:
        return "none (unconditional: --class does not apply)"
    return f"{len(classes)}, for --class: " + ", ".join(f"{i} {name}" for i, name in enumerate(classes))


def _graph_line(entry: OnnxFile | None) -> str:
    if entry is None:
        return "none (a decoder-only model: it cannot encode)"
    return f"{entry.file} ({', '.join(entry.inputs)} -> {', '.join(entry.outputs)})"


#: How an imported model's graphs were made from the shapes its Keras files have (origin's keys and values, as
#: vae_gen.export writes them), in words; other values are not shown.
ORIGIN_SHAPES = {
    ("decoder_output", "logits"): "the decoder outputs logits (the graph applies the sigmoid)",
    ("encoder_outputs", "fused"): "one fused encoder output (z_mean first)",
    ("encoder_outputs", "fused-log-var-first"): "one fused encoder output (z_log_var first)",
    ("decoder_label", "concatenated"): "the decoder takes concat(z, label)",
    ("encoder_label", "tiled"): "the encoder takes the label tiled over the image",
    ("trust_code", True): "Lambda code trusted at export (vae-gen parity needs --trust-code)",
}


def _origin_line(origin: dict[str, Any]) -> str:
    if origin.get("kind") == "keras":
        files = ", ".join(str(origin[role]) for role in ("decoder", "encoder") if origin.get(role))
        # Exact values only (the same type too: JSON's 1 is not true), from a card that may be hand-edited.
        shapes = [words for (key, value), words in ORIGIN_SHAPES.items()
                  if type(origin.get(key)) is type(value) and origin.get(key) == value]  # fmt: skip
        return f"imported from Keras files ({files})" + "".join(f"; {words}" for words in shapes)
    return "trained by vae-gen train"


def _is_number(value: object) -> TypeGuard[int | float]:
    """Whether a value read from a model.json is a number (JSON's true and false are not), before it is formatted."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parity_line(parity: dict[str, Any]) -> str:
    """The card's parity record, each value shown only if it is what it should be (a hand-edited card may say
    anything): a number, or a short text; else "?"."""

    def number(key: str, spec: str = ".3g") -> str:
        value = parity.get(key)
        return format(value, spec) if _is_number(value) else "?"

    def text(key: str) -> str:
        value = parity.get(key)
        return shown(value)[1:-1] if isinstance(value, str) else "?"

    if "reference" in parity:  # a quantized copy: compared with the float32 graphs it came from
        line = f"parity:        max |onnx - {text('reference')}| {number('max_abs_diff')} (mean {number('mean_abs_diff')})"
        if "encoder_reference" in parity:
            line += (f"; max |onnx - {text('encoder_reference')}| {number('encoder_max_abs_diff')} "
                     f"(mean {number('encoder_mean_abs_diff')})")  # fmt: skip
        return line
    return f"parity:        max |keras - onnx| {number('max_abs_diff')} (tolerance {number('tolerance', 'g')})"


#: A model.json's free text longer than this is cut in `info` (the card itself is unchanged).
INFO_TEXT_CHARACTERS = 300


def _printable(value: object, limit: int = 120) -> str:
    """A card's text for the terminal: control characters (escape sequences, newlines) shown escaped, as repr
    writes them, so a hostile model.json cannot rewrite the screen or forge lines; cut to `limit` characters."""
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(value))
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


#: The sample-quality figures `info` shows, by their key in model.json's extra.sample_quality.
SAMPLE_FIGURES = (("fd", "FD", ".2f"), ("precision", "precision", ".3f"), ("recall", "recall", ".3f"),
                  ("class_entropy", "class entropy", ".3f"), ("class_accuracy", "class accuracy", ".3f"))  # fmt: skip


def _samples_line(record: object) -> str:
    """The card's sample-quality record in one line, or "not measured"; a hand-edited value shows as "?"."""
    if not isinstance(record, dict):
        return "not measured"

    def figure(key: str, form: str) -> str:
        value = record.get(key)
        return format(value, form) if _is_number(value) and math.isfinite(value) else "?"

    shown_figures = [f"{label} {figure(key, form)}" for key, label, form in SAMPLE_FIGURES if key in record]
    images = record.get("images")
    about = f" ({images:,} images at T = 1 against the test set)" if isinstance(images, int) else ""
    return ", ".join(shown_figures) + about if shown_figures else "not measured"


def _cmd_models(args: argparse.Namespace) -> int:
    damaged = 0
    for name in list_models():
        try:
            card = load_verified(resolve_model(name))
        except VaeGenError as exc:
            print(f"vae-gen models: error: {exc}", file=sys.stderr)
            damaged += 1
            continue
        default = " (default)" if name == DEFAULT_MODEL else ""
        elbo = card.test_metrics.get("neg_elbo")
        elbo_text = f"test -ELBO {elbo:.1f}" if _is_number(elbo) else ""
        classes = f"{len(card.classes)} classes" if card.classes else "unconditional"
        samples = card.extra.get("sample_quality")
        fd = samples.get("fd") if isinstance(samples, dict) else None
        if _is_number(fd) and math.isfinite(fd):
            elbo_text += f", sample FD {fd:.1f}"
        print(f"{name}{default}\t{card.architecture}, latent {card.latent_dim}, {classes}\t{elbo_text}")
    return USER_ERROR if damaged else 0


def _cmd_selftest(args: argparse.Namespace) -> int:
    generator = Generator(args.model)
    result = generator.selftest()
    verdict = "pass" if result.passed else "FAIL"
    print(
        f"{generator.name}: {verdict}: {result.checks} golden latents, "
        f"max abs difference {result.max_abs_diff:.3g} (tolerance {result.tolerance:g})"
    )
    return 0 if result.passed else 1
