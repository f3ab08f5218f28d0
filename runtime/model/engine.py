"""The engine fingerprint: what, besides the model and the request, decides the exact bytes of an image.

onnxruntime's MLAS picks its GEMM and convolution kernels from the CPU's
features (SSE, AVX, AVX2/FMA, AVX-512, VNNI, AMX), and kernels that sum in
another order differ in the last bits of a float: a pixel within that noise
of a .5 boundary rounds to the other uint8 level. So images are byte-identical
only on one engine: the same CPU features, onnxruntime and numpy. Latents are
numpy integer arithmetic and exact everywhere. Run records, Dask runs and
serve's ETags carry this fingerprint so that a promise of equal bytes is only
made where it holds.
"""

from __future__ import annotations

import functools
import importlib
import math
import platform
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.memory import import_onnxruntime

#: numpy's names of the CPU features MLAS chooses its kernels by (read by CPUID at run time, so an emulated CPU
#: reports its own), and the short names the fingerprint gives them.
KERNEL_FEATURES = {
    "AVX": "avx",
    "FMA3": "fma",
    "AVX2": "avx2",
    "AVX512F": "avx512f",
    "AVX512_SKX": "avx512core",
    "AVX512VNNI": "avx512_vnni",
    "AVX512_SPR": "avx512_spr",
}


#: Features numpy does not report, read from the kernel's CPU flags (Linux), each only where the CPUID features
#: it extends are present: under an emulated CPU the kernel still lists the host's flags.
KERNEL_FLAGS = {"avx_vnni": "AVX2", "amx_int8": "AVX512F"}


def _cpu_features() -> dict[str, bool] | None:
    """numpy's run-time CPU feature table (CPUID on x86), or None where this numpy does not expose it."""
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            table: Any = importlib.import_module(module).__cpu_features__
        except (ImportError, AttributeError):
            continue
        if isinstance(table, dict):
            return {str(k): bool(v) for k, v in table.items()}
    return None


def _kernel_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def _kernel_choosing_features() -> str:
    table = _cpu_features()
    if table is None:
        return "unknown"
    present = [short for name, short in KERNEL_FEATURES.items() if table.get(name)]
    flags = _kernel_flags()
    present += [flag for flag, needs in KERNEL_FLAGS.items() if flag in flags and table.get(needs)]
    return ",".join(present) or "sse"


@functools.cache
def engine_fingerprint() -> dict[str, str]:
    """{"machine", "cpu", "onnxruntime", "numpy"}: equal fingerprints give equal image bytes for equal requests.

    "cpu" lists the kernel-choosing features present, comma-separated ("sse" when none is; "unknown" where they
    cannot be read).
    """
    onnxruntime = import_onnxruntime()
    return {
        "machine": platform.machine().lower(),
        "cpu": _kernel_choosing_features(),
        "onnxruntime": str(onnxruntime.__version__),
        "numpy": str(np.__version__),
    }


def describe(fingerprint: object) -> str:
    """One line naming a fingerprint: `x86_64 avx,fma,avx2, onnxruntime 1.32.0, numpy 2.4.6`."""
    if not isinstance(fingerprint, dict):
        return "an unrecorded engine"
    machine, cpu, ort, numpy = (str(fingerprint.get(key, "?")) for key in ("machine", "cpu", "onnxruntime", "numpy"))
    return f"{machine} [{cpu}], onnxruntime {ort}, numpy {numpy}"


def engine_tag() -> str:
    """The fingerprint as one short string, for cache keys such as serve's ETags."""
    fp = engine_fingerprint()
    return "/".join(fp[key] for key in ("machine", "cpu", "onnxruntime", "numpy"))


@dataclass(frozen=True)
class Tolerance:
    """How far two engines' images for the same request may differ: the cross-machine promise of one precision."""

    #: Largest |a - b| of the float output (values in [0, 1]).
    max_abs: float
    #: Largest difference of one uint8 pixel, in levels.
    max_levels: int
    #: Largest fraction of uint8 pixels that may differ at all.
    max_fraction: float

    def violations(self, expected: np.ndarray, got: np.ndarray, expected_u8: np.ndarray, got_u8: np.ndarray) -> list[str]:
        """What breaks this tolerance between two outputs (float and uint8) of one request; [] if nothing does."""
        problems = []
        if expected.shape != got.shape or expected_u8.shape != got_u8.shape:
            return [f"shapes differ: {list(expected.shape)} and {list(got.shape)}"]
        if expected.size:
            diff = float(np.max(np.abs(expected.astype(np.float64) - got)))
            if not diff <= self.max_abs:  # NaN fails too
                problems.append(f"float output differs by up to {diff:.3g} (tolerance {self.max_abs:g})")
        levels = np.abs(expected_u8.astype(np.int16) - got_u8.astype(np.int16))
        if levels.size:
            worst, moved = int(levels.max()), int(np.count_nonzero(levels))
            if worst > self.max_levels:
                problems.append(f"a pixel differs by {worst} levels (tolerance {self.max_levels})")
            allowed = math.ceil(self.max_fraction * levels.size)
            if moved > allowed:
                problems.append(
                    f"{moved} of {levels.size} pixels differ ({moved / levels.size:.2e}; tolerance {self.max_fraction:g}, "
                    f"{allowed} here)"
                )
        return problems


#: The measured cross-engine bounds (docs/determinism.md: SSE-only, AVX2/FMA and AVX-512 CPUs, onnxruntime's
#: MLAS kernels), with a margin. float32 models: float sums differ in the last bits, and a pixel within that
#: noise of a .5 boundary rounds to the neighbouring level. int8 models: a requantized activation that lands the
#: other side of a rounding step moves a whole quantization step, so a few pixels move by many levels.
CROSS_ENGINE = {
    "float32": Tolerance(max_abs=1e-5, max_levels=1, max_fraction=1e-4),
    "int8": Tolerance(max_abs=0.1, max_levels=26, max_fraction=2e-3),
}
