#!/usr/bin/env bash
# Install everything vae-gen needs, check lint and types, and run the whole test suite twice:
#   1. in .venv-full: the package with its train, dask, serve and dev extras (TensorFlow, tf2onnx, Dask, FastAPI, pytest,
#      ruff, mypy), after `ruff check` and `mypy -p vae_gen` pass;
#   2. in .venv-runtime: only the base install (onnxruntime, numpy, pillow) plus pytest,
#      where the TensorFlow tests skip and a test asserts TensorFlow cannot be imported;
#   3. the tests marked `portability` (golden outputs within the cross-engine tolerance, shards, resumes) once more
#      in .venv-runtime under an emulated SSE-only CPU (Debian's qemu-user, `-cpu Nehalem`): onnxruntime then runs
#      other kernels than on this CPU, as it would on a user's (x86_64 only; about 3 minutes).
# Run from anywhere; needs Python 3.10+, and apt-get (root or sudo) if the Fashion-MNIST
# package or Debian's python3-venv (venv with ensurepip) is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

apt_install() {
    echo "== installing Debian's $*"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

if [ -z "${VAE_GEN_DATA:-}" ] && [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
    apt_install dataset-fashion-mnist
fi
# The web page's end-to-end test drives Debian's Chromium (it never downloads a browser or a driver).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    apt_install chromium chromium-driver
fi
# Another CPU's kernel paths, emulated (x86_64 hosts).
if [ "$(uname -m)" = x86_64 ] && ! command -v qemu-x86_64 >/dev/null; then
    apt_install qemu-user
fi
# Debian's python3 ships venv without ensurepip; python3-venv adds it.
if ! "$PYTHON" -c "import ensurepip, venv" 2>/dev/null; then
    apt_install python3-venv
fi

# Stale setuptools build output could smuggle removed files into the wheel.
rm -rf build ./*.egg-info

echo "== full environment: vae-gen[train,dask,serve,dev]"
"$PYTHON" -m venv --clear .venv-full
.venv-full/bin/python -m pip install -q ".[train,dask,serve,dev]"

echo "== lint (ruff) and types (mypy, strict on the runtime) of the installed package"
.venv-full/bin/ruff check .
.venv-full/bin/mypy -p vae_gen

.venv-full/bin/python -m pytest -q -p no:cacheprovider

echo "== runtime-only environment: vae-gen (base install) + pytest"
"$PYTHON" -m venv --clear .venv-runtime
.venv-runtime/bin/python -m pip install -q . pytest hypothesis
VAE_GEN_RUNTIME_ONLY=1 .venv-runtime/bin/python -m pytest -q -p no:cacheprovider

if [ "$(uname -m)" = x86_64 ]; then
    echo "== runtime-only environment under an emulated SSE-only CPU (qemu-x86_64 -cpu Nehalem): portability tests"
    # qemu warns once per process about CPUID bits TCG lacks; the tests' own output passes through.
    VAE_GEN_RUNTIME_ONLY=1 qemu-x86_64 -cpu Nehalem .venv-runtime/bin/python -m pytest -q -p no:cacheprovider -m portability \
        2> >(grep -v "TCG doesn't support requested feature" >&2)
fi
