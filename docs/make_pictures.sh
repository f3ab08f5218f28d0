#!/usr/bin/env bash
# Regenerate every picture in README.md from the shipped models, with the commands shown there.
# Needs the package installed (pip install .); the reconstruct inputs are already in docs/examples/.
# The web page's screenshot also needs the serve and dev extras and Debian's chromium and chromium-driver.
set -euo pipefail
cd "$(dirname "$0")"
# One sheet per shipped model; a class-conditional one (its second column says "N classes") draws one row
# per class, as README's caption says.
vae-gen models | sed 's/ (default)//' | while IFS=$'\t' read -r model shape _; do
    classes=()
    if [[ "$shape" == *classes* ]]; then classes=(--class all); fi
    vae-gen sample -n 100 --seed 0 --model "$model" "${classes[@]}" --grid "samples-$model.png" --scale 3 < /dev/null
done
vae-gen sample -n 100 --seed 0 --model fashion-mnist-conditional32 --class all --guidance 1 --temperature 0.8 \
    --grid samples-fashion-mnist-conditional32-guided.png --scale 3
if [[ -d ../runs/priors/gmm50 ]]; then  # README's fit-prior command makes it (79 s)
    vae-gen sample -n 100 --seed 0 --model ../runs/priors/gmm50 --grid samples-residual32-gmm50.png --scale 3
else
    echo "samples-residual32-gmm50.png kept: no runs/priors/gmm50 (README's fit-prior command makes it)"
fi
vae-gen interpolate --from-seed 3 --to-seed 7 --steps 10 --out interpolate.png --scale 3
vae-gen interpolate --from-seed 3 --to-seed 7 --steps 24 --out interpolate.gif --scale 4 --fps 12
vae-gen manifold --size 15 --extent 2 --out manifold.png --scale 2
vae-gen manifold --model fashion-mnist-dense2 --size 20 --extent 2 --out manifold-dense2.png --scale 2
vae-gen walk --seed 0 --legs 6 --frames-per-leg 15 --out walk.gif --scale 4
vae-gen reconstruct examples/* --variations 5 --seed 0 --out reconstruct.png --scale 3
python web_page_screenshot.py web-page.png
