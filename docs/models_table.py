"""Print README's table of shipped models from their model.json files:  python docs/models_table.py"""

from __future__ import annotations

import vae_gen


def main() -> None:
    print(
        "| model | architecture | latent | test -ELBO | reconstruction | KL | IW NLL (k=50) | parity max diff "
        "| decoder | MFLOP/image |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in vae_gen.list_models():
        folder = vae_gen.resolve_model(name)
        card = vae_gen.ModelCard.load(folder)
        m = card.test_metrics
        default = " (default)" if name == vae_gen.DEFAULT_MODEL else ""
        size_kb = (folder / card.decoder.file).stat().st_size / 1000
        print(
            f"| `{name}`{default} | {card.architecture}{f', {len(card.classes)} classes' if card.classes else ''} | "
            f"{card.latent_dim} | **{m['neg_elbo']:.2f}** | "
            f"{m['reconstruction']:.2f} | {m['kl']:.2f} | {m['iw_nll']:.2f} | {card.parity['max_abs_diff']:.1e} | "
            f"{size_kb:.0f} kB | {card.decoder_flops / 1e6:.2f} |"
        )


if __name__ == "__main__":
    main()
