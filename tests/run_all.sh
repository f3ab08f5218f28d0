#!/usr/bin/env bash
# Install everything vae-gen needs and run the whole test suite twice:
#   1. in .venv-full: the package with its train, dask and dev extras (TensorFlow, tf2onnx, Dask, pytest);
#   2. in .venv-runtime: only the base install (onnxruntime, numpy, pillow) plus pytest,
#      where the TensorFlow tests skip and a test asserts TensorFlow cannot be imported.
# Run from anywhere; needs Python 3.10+ with venv, and apt-get (root or sudo) if the
# Fashion-MNIST package is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ -z "${VAE_GEN_DATA:-}" ] && [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
    echo "== installing Debian's dataset-fashion-mnist"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist
fi

# Stale setuptools build output could smuggle removed files into the wheel.
rm -rf build ./*.egg-info

echo "== full environment: vae-gen[train,dask,dev]"
"$PYTHON" -m venv --clear .venv-full
.venv-full/bin/python -m pip install -q ".[train,dask,dev]"
.venv-full/bin/python -m pytest -q -p no:cacheprovider

echo "== runtime-only environment: vae-gen (base install) + pytest"
"$PYTHON" -m venv --clear .venv-runtime
.venv-runtime/bin/python -m pip install -q . pytest hypothesis
VAE_GEN_RUNTIME_ONLY=1 .venv-runtime/bin/python -m pytest -q -p no:cacheprovider
