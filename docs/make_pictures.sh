#!/usr/bin/env bash
# Regenerate every picture in README.md from the shipped models, with the commands shown there.
# Needs the package installed (pip install .); the reconstruct inputs are already in docs/examples/.
# The web page's screenshot also needs the serve and dev extras and Debian's chromium and chromium-driver.
set -euo pipefail
cd "$(dirname "$0")"
for model in $(vae-gen models | cut -f1 | sed 's/ (default)//'); do
    vae-gen sample -n 100 --seed 0 --model "$model" --grid "samples-$model.png" --scale 3
done
vae-gen interpolate --from-seed 3 --to-seed 7 --steps 10 --out interpolate.png --scale 3
vae-gen interpolate --from-seed 3 --to-seed 7 --steps 24 --out interpolate.gif --scale 4 --fps 12
vae-gen manifold --size 15 --extent 2 --out manifold.png --scale 2
vae-gen manifold --model fashion-mnist-dense2 --size 20 --extent 2 --out manifold-dense2.png --scale 2
vae-gen walk --seed 0 --legs 6 --frames-per-leg 15 --out walk.gif --scale 4
vae-gen reconstruct examples/* --variations 5 --seed 0 --out reconstruct.png --scale 3
python web_page_screenshot.py web-page.png
