"""Paths through the latent space: interpolation, the manifold grid, a seeded walk.

Pure numpy; every function returns float32 latents [n, latent_dim] for the
decoder. Spherical interpolation follows the shell where N(0, I) samples
live in more than a few dimensions; linear interpolation cuts through the
low-density centre and gives washed-out middles.
"""

from __future__ import annotations

import numpy as np

from ..core.checks import check_integer
from ..errors import InvalidArgumentError
from .latents import check_seed, sample_latents

#: Images of one path, walk or strip at most: 2,000 28x28 frames are a 3 MB GIF; each also costs a decode.
MAX_FRAMES = 2_000
#: Images per side of a manifold grid at most: 100 x 100 = 10,000 images, as a contact sheet holds.
MAX_MANIFOLD_SIZE = 100

METHODS = ("linear", "spherical")


def interpolate(a: np.ndarray, b: np.ndarray, steps: int, method: str = "spherical") -> np.ndarray:
    """`steps` latents from a to b inclusive, by straight line or great circle."""
    if method not in METHODS:
        raise InvalidArgumentError(f"interpolation method must be one of {', '.join(METHODS)}, got {method!r}")
    steps = check_integer(steps, 2, MAX_FRAMES, "interpolation steps")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    path = (1 - t) * a + t * b if method == "linear" else _slerp(a, b, t)
    return np.asarray(path, np.float32)


def _slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    line: np.ndarray = (1 - t) * a + t * b
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    if norm_a == 0 or norm_b == 0:
        return line
    cos_omega = np.clip(np.dot(a / norm_a, b / norm_b), -1.0, 1.0)
    omega = np.arccos(cos_omega)
    if np.sin(omega) < 1e-6:  # (anti)parallel: the great circle is undefined, the line is fine
        return line
    arc: np.ndarray = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return arc


def manifold(latent_dim: int, size: int, extent: float, dims: tuple[int, int] = (0, 1)) -> np.ndarray:
    """A size x size grid over [-extent, extent]^2 in latent dimensions `dims`, others 0.

    Row-major, top row first; x grows to the right and y grows upwards, as
    keras.io's VAE example plots the 2-D latent plane.
    """
    x_dim, y_dim = dims
    for d in dims:
        if not 0 <= d < latent_dim:
            raise InvalidArgumentError(f"latent dimension must be from 0 to {latent_dim - 1}, got {d}")
    if x_dim == y_dim:
        raise InvalidArgumentError(f"the two manifold dimensions must differ, got {x_dim} twice")
    size = check_integer(size, 2, MAX_MANIFOLD_SIZE, "manifold size")
    if not (np.isfinite(extent) and extent > 0):
        raise InvalidArgumentError(f"manifold extent must be a finite number > 0, got {extent}")
    values = np.linspace(-extent, extent, size)
    z = np.zeros((size * size, latent_dim), np.float32)
    for row, y in enumerate(values[::-1]):
        for col, x in enumerate(values):
            z[row * size + col, x_dim] = x
            z[row * size + col, y_dim] = y
    return z


def random_walk(latent_dim: int, seed: int, legs: int, frames_per_leg: int) -> np.ndarray:
    """A smooth loop of legs * frames_per_leg latents through `legs` seeded N(0, I) waypoints.

    Each leg follows the great circle between two waypoints with smoothstep
    easing (slow into and out of each waypoint, so legs join without a jolt),
    and the last leg returns to the first waypoint, so an animation loops.
    """
    seed = check_seed(seed)
    legs = check_integer(legs, 2, MAX_FRAMES // 2, "walk legs")
    frames_per_leg = check_integer(frames_per_leg, 2, MAX_FRAMES // 2, "frames per leg")
    if legs * frames_per_leg > MAX_FRAMES:
        raise InvalidArgumentError(f"a walk of {legs} legs x {frames_per_leg} frames is {legs * frames_per_leg:,} frames; "
                                   f"at most {MAX_FRAMES:,}")  # fmt: skip
    waypoints = sample_latents(seed, 0, legs, latent_dim).astype(np.float64)
    waypoints = np.concatenate([waypoints, waypoints[:1]])
    t = np.linspace(0.0, 1.0, frames_per_leg, endpoint=False)
    eased = (t * t * (3 - 2 * t))[:, None]
    return np.concatenate([_slerp(waypoints[i], waypoints[i + 1], eased) for i in range(legs)]).astype(np.float32)
