"""Print README's table of shipped models from their model.json files:  python docs/models_table.py"""

from __future__ import annotations

import vae_gen


def main() -> None:
    print(
        "| model | architecture | latent | objective | test -ELBO | IW NLL (k=50) | sample FD | precision | recall "
        "| parity max diff | decoder | MFLOP/image |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in vae_gen.list_models():
        folder = vae_gen.resolve_model(name)
        card = vae_gen.ModelCard.load(folder)
        m = card.test_metrics
        default = " (default)" if name == vae_gen.DEFAULT_MODEL else ""
        size_kb = (folder / card.decoder.file).stat().st_size / 1000
        samples = card.extra.get("sample_quality", {})
        quality = " | ".join(f"{samples[key]:{form}}" if key in samples else "-"
                             for key, form in (("fd", ".2f"), ("precision", ".3f"), ("recall", ".3f")))  # fmt: skip
        print(
            f"| `{name}`{default} | {card.architecture}{f', {len(card.classes)} classes' if card.classes else ''} | "
            f"{card.latent_dim} | {card.training.get('objective', 'elbo')} | **{m['neg_elbo']:.2f}** | "
            f"{m['iw_nll']:.2f} | {quality} | {card.parity['max_abs_diff']:.1e} | "
            f"{size_kb:.0f} kB | {card.decoder_flops / 1e6:.2f} |"
        )


if __name__ == "__main__":
    main()
