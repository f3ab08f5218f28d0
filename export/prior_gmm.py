"""A Gaussian-mixture prior as a deterministic ONNX graph: noise u float32 [batch, d + 1] -> z float32 [batch, d].

The mixture p(z) = sum_k w_k N(z; mu_k, L_k L_k^T) is fitted after training
on posterior samples of the latents (Ghosh et al. 2020; Chadebec &
Allassonnière 2022), with sklearn's full-covariance GaussianMixture. The
runtime draws u ~ N(0, I) in numpy, as it draws latents, and the graph,
which holds no random op, turns each row into one sample of the mixture:

- the first coordinate picks the component: Phi(u0) is uniform on (0, 1), so
  k = #{j : c_j <= Phi(u0)}, clipped to K - 1, with c the cumulative weights
  (the last forced to exactly 1), is component j with probability w_j;
- the other d coordinates, independent of u0, go through that component:
  z = mu_k + L_k u[1:] ~ N(mu_k, L_k L_k^T).

How the component is computed. Phi increases, so c_j <= Phi(u0) is the same
event as q_j <= u0 with q_j = Phi^{-1}(c_j), the quantiles of the cumulative
weights. The graph compares u0 with the q_j, computed once in float64 and
rounded to float32 (q_{K-1} = +inf), instead of taking Erf of u0 at run
time. A comparison of two float32 numbers is exact in every runtime, so the
graph in onnxruntime (any provider, any language) and `sample_numpy` pick
the same component for every row, a u0 exactly on a boundary included.
Through Erf they would not: 0.5 (1 + Erf(u0 / sqrt 2)) in onnxruntime 1.32
differs by one float32 step from the same float32 formula in numpy and
scipy for 7 % of N(0, 1) draws (2,000,000 draws), and a p one step off a
c_j moves its row to the next component, which moves z by the distance
between two component means. Rounding q_j to float32 moves a weight by at
most phi(q_j) x ulp(q_j) / 2 < 1.5e-8 (largest at |q_j| = 1), far below any
sampling error.

Temperature. The runtime applies a temperature T by scaling u before the
graph, and for this prior it must scale u[:, 1:] only and leave u0 alone
(`scale_noise`; the card's `unscaled_noise` = UNSCALED_NOISE = 1 says so).
Scaling u0 would change which components are drawn, not how far samples
spread: component j would come with probability Phi(q_j / T) - Phi(q_{j-1} / T),
so as T -> 0 every sample would come from the one component whose interval
holds Phi = 1/2, and as T grows the first and the last components would take
over; which ones those are depends on sklearn's arbitrary order of the
components. Scaling u[:, 1:] alone draws component j with its fitted weight
w_j and from N(mu_j, T^2 Sigma_j): the usual reduced temperature of a
Gaussian model, each sample pulled towards its component's mean, every
component (every class it stands for) kept. At T = 1 both are the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from vae_gen.errors import InvalidArgumentError

from .graph_rules import OPSET, check_graph
from .parity_checks import ParityError, ParityReport, compare, parity_latents

log = logging.getLogger(__name__)

#: The graph's input and output names (and the intermediate that `parity` reads: the picked component).
NOISE_INPUT, PRIOR_OUTPUT, COMPONENT = "noise", "z", "component"
#: Leading noise coordinates that a temperature must not scale: u0, which picks the component.
UNSCALED_NOISE = 1
#: The ONNX IR version that goes with OPSET 17 (as in every tf2onnx-exported graph of the project).
IR_VERSION = 8


@dataclass(frozen=True, eq=False)
class GaussianMixturePrior:
    """K full-covariance Gaussians in d dimensions, float64.

    weights: [K], each >= 0, summing to 1. means: [K, d]. cholesky: [K, d, d],
    lower-triangular factors L_k with a positive diagonal; component k's
    covariance is L_k L_k^T. `fitted` records how it was fitted (fit_gmm).
    """

    weights: np.ndarray
    means: np.ndarray
    cholesky: np.ndarray
    fitted: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("weights", "means", "cholesky"):
            object.__setattr__(self, name, np.array(getattr(self, name), dtype=np.float64))
        w, mu, chol = self.weights, self.means, self.cholesky
        if w.ndim != 1 or len(w) < 1 or mu.ndim != 2 or mu.shape[0] != len(w) or mu.shape[1] < 1:
            raise InvalidArgumentError(f"a mixture needs weights [K] and means [K, d], got {list(w.shape)} and {list(mu.shape)}")
        if chol.shape != (*mu.shape, mu.shape[1]):
            raise InvalidArgumentError(f"cholesky factors must be [K, d, d] = {[*mu.shape, mu.shape[1]]}, got {list(chol.shape)}")
        if not (np.isfinite(w).all() and np.isfinite(mu).all() and np.isfinite(chol).all()):
            raise InvalidArgumentError("a mixture's weights, means and cholesky factors must be finite")
        if (w < 0).any() or abs(w.sum() - 1.0) > 1e-6:
            raise InvalidArgumentError(f"mixture weights must be >= 0 and sum to 1, got sum {w.sum():.9g}")
        if (np.triu(chol, 1) != 0).any() or (np.diagonal(chol, axis1=1, axis2=2) <= 0).any():
            raise InvalidArgumentError("cholesky factors must be lower-triangular with a positive diagonal")

    @property
    def components(self) -> int:
        return len(self.weights)

    @property
    def latent_dim(self) -> int:
        return int(self.means.shape[1])

    @property
    def noise_dim(self) -> int:
        """The width of the graph's noise input: d + 1 (u0 picks the component)."""
        return self.latent_dim + 1

    @property
    def covariances(self) -> np.ndarray:
        """float64 [K, d, d]: L_k L_k^T."""
        return np.einsum("kij,klj->kil", self.cholesky, self.cholesky)

    def quantiles(self) -> np.ndarray:
        """float32 [K]: q_j = Phi^{-1}(c_j) of the cumulative weights c (the last forced to 1, so q_{K-1} = +inf),
        computed in float64 and rounded once; component k = #{j : q_j <= u0}, clipped to K - 1."""
        from scipy.special import ndtri

        cumulative = np.cumsum(self.weights)
        cumulative[-1] = 1.0
        return ndtri(np.clip(cumulative, 0.0, 1.0)).astype(np.float32)

    def component(self, u: np.ndarray) -> np.ndarray:
        """int64 [n]: the component each noise row (float32 [n, d + 1]) picks, exactly as the graph picks it."""
        u = self._check_noise(u)
        below = self.quantiles()[None, :] <= u[:, :1]  # float32 against float32: exact, as in the graph
        return np.minimum(below.sum(axis=1, dtype=np.int64), self.components - 1)

    def sample_numpy(self, u: np.ndarray) -> np.ndarray:
        """The numpy reference of `to_onnx`'s graph: noise float32 [n, d + 1] -> z float32 [n, d].

        Computed as the graph computes it: the component from float32
        comparisons (bit-identical), then every component's affine map in one
        float32 product u[:, 1:] @ [L_0^T ... L_{K-1}^T] + [mu_0 ... mu_{K-1}],
        of which row i keeps its component's d columns. Row i depends on
        u[i] alone. Noise of another float dtype is rounded to float32 first.
        """
        u = self._check_noise(u)
        k = self.component(u)
        every = u[:, 1:] @ self._stacked_cholesky_t() + self._stacked_means()
        picked = np.take_along_axis(every.reshape(len(u), self.components, self.latent_dim), k[:, None, None], axis=1)
        return picked[:, 0, :]

    def to_onnx(self) -> onnx.ModelProto:
        """The prior graph (opset 17, no random op): input "noise" float32 [batch, d + 1], output "z" float32 [batch, d]."""
        k, d = self.components, self.latent_dim
        p = d + 1

        def ints(name: str, values: list[int]) -> TensorProto:
            return numpy_helper.from_array(np.array(values, np.int64), name)

        initializers = [
            ints("first", [0]), ints("second", [1]), ints("end", [p]), ints("axis_1", [1]),
            numpy_helper.from_array(self.quantiles()[None, :], "quantiles"),  # [1, K]
            numpy_helper.from_array(np.array(k - 1, np.int64), "last_component"),
            numpy_helper.from_array(self._stacked_cholesky_t(), "cholesky_t"),  # [d, K d]
            numpy_helper.from_array(self._stacked_means(), "means"),  # [K d]
            ints("by_component", [0, k, d]), ints("one_per_row", [-1, 1, 1]), ints("across_latent", [1, 1, d]),
        ]  # fmt: skip
        nodes = [
            helper.make_node("Slice", [NOISE_INPUT, "first", "second", "axis_1"], ["u0"]),  # [B, 1]
            helper.make_node("Slice", [NOISE_INPUT, "second", "end", "axis_1"], ["eps"]),  # [B, d]
            # The component: how many quantiles u0 has reached (Phi(u0) >= c_j), at most K - 1.
            helper.make_node("LessOrEqual", ["quantiles", "u0"], ["reached"]),  # [B, K]
            helper.make_node("Cast", ["reached"], ["reached_int"], to=TensorProto.INT64),
            helper.make_node("ReduceSum", ["reached_int", "axis_1"], ["count"], keepdims=0),  # [B]
            helper.make_node("Min", ["count", "last_component"], [COMPONENT]),
            # Every component's mu_k + L_k eps in one product, then the picked component's d columns.
            helper.make_node("MatMul", ["eps", "cholesky_t"], ["spread"]),  # [B, K d]
            helper.make_node("Add", ["spread", "means"], ["every_flat"]),
            helper.make_node("Reshape", ["every_flat", "by_component"], ["every"]),  # [B, K, d]
            helper.make_node("Reshape", [COMPONENT, "one_per_row"], ["component_3d"]),  # [B, 1, 1]
            helper.make_node("Expand", ["component_3d", "across_latent"], ["index"]),  # [B, 1, d]
            helper.make_node("GatherElements", ["every", "index"], ["picked"], axis=1),  # [B, 1, d]
            helper.make_node("Squeeze", ["picked", "axis_1"], [PRIOR_OUTPUT]),  # [B, d]
        ]
        graph = helper.make_graph(
            nodes,
            "gaussian_mixture_prior",
            [helper.make_tensor_value_info(NOISE_INPUT, TensorProto.FLOAT, ["batch", p])],
            [helper.make_tensor_value_info(PRIOR_OUTPUT, TensorProto.FLOAT, ["batch", d])],
            initializers,
            doc_string=f"{k}-component Gaussian mixture in {d} dimensions: noise[:, 0] picks the component, "
            f"noise[:, 1:] goes through its Cholesky factor",
        )
        proto = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION, producer_name="vae-gen"
        )
        check_graph(proto, [NOISE_INPUT])
        return proto

    def _stacked_cholesky_t(self) -> np.ndarray:
        # Column block k holds L_k^T: eps @ block k = (L_k eps^T)^T.
        return np.ascontiguousarray(np.concatenate(list(self.cholesky.transpose(0, 2, 1)), axis=1), np.float32)

    def _stacked_means(self) -> np.ndarray:
        return self.means.reshape(-1).astype(np.float32)

    def _check_noise(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.float32)
        if u.ndim != 2 or u.shape[1] != self.noise_dim:
            raise InvalidArgumentError(f"noise must be [n, {self.noise_dim}] (latent {self.latent_dim} + 1), got {list(u.shape)}")
        return u


def scale_noise(u: np.ndarray, temperature: float) -> np.ndarray:
    """What the runtime does with a temperature for this prior: u[:, UNSCALED_NOISE:] times T, u0 kept (see the
    module's docstring). float32 [n, d + 1] -> float32 [n, d + 1], a new array."""
    scaled = np.array(u, dtype=np.float32)
    scaled[:, UNSCALED_NOISE:] *= np.float32(temperature)
    return scaled


def fit_gmm(z: np.ndarray, components: int, seed: int) -> GaussianMixturePrior:
    """A `components`-component full-covariance mixture fitted to latents z [n, latent] (n >= components) by
    sklearn's EM (k-means start, random_state=seed, its default 1e-6 added to each covariance's diagonal)."""
    from sklearn.mixture import GaussianMixture

    z = np.asarray(z, dtype=np.float64)
    if isinstance(components, bool) or not isinstance(components, int | np.integer) or components < 1:
        raise InvalidArgumentError(f"components must be an integer >= 1, got {components!r}")
    if z.ndim != 2 or z.shape[1] < 1 or len(z) < components:
        raise InvalidArgumentError(f"latents must be [n, latent] with n >= {components} components, got {list(z.shape)}")
    if not np.isfinite(z).all():
        raise InvalidArgumentError("latents must be finite")
    mixture = GaussianMixture(n_components=int(components), covariance_type="full", random_state=seed)
    mixture.fit(z)
    if not mixture.converged_:
        log.warning("the Gaussian mixture did not converge in %d EM iterations", mixture.n_iter_)
    fitted = {
        "points": len(z), "components": int(components), "covariance": "full", "seed": seed,
        "converged": bool(mixture.converged_), "iterations": int(mixture.n_iter_),
        "mean_log_likelihood": float(mixture.score(z)),
    }  # fmt: skip
    log.info("Gaussian mixture: %s", fitted)
    return GaussianMixturePrior(
        weights=mixture.weights_ / mixture.weights_.sum(),
        means=mixture.means_,
        cholesky=np.linalg.cholesky(mixture.covariances_),
        fitted=fitted,
    )


def parity_noise(prior: GaussianMixturePrior) -> dict[str, np.ndarray]:
    """The gate's noise sets (seeded N(0, I) at each parity batch size, far-out noise with the cube's corners), and
    rows whose u0 lies exactly on each finite quantile and one float32 step either side of it."""
    sets = parity_latents(prior.noise_dim)
    q = prior.quantiles()
    q = q[np.isfinite(q)]
    if len(q):
        rng = np.random.default_rng(len(q))
        u0 = np.concatenate([np.nextafter(q, np.float32(-np.inf)), q, np.nextafter(q, np.float32(np.inf))])
        rows = np.concatenate([u0[:, None], rng.standard_normal((len(u0), prior.latent_dim))], axis=1)
        sets[f"u0 on the component boundaries, batch {len(rows)}"] = rows.astype(np.float32)
    return sets


def component_probe(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of a prior graph that also returns its intermediate "component", int64 [batch]: which component each
    row picked. For checks only; the model folder holds the graph itself."""
    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    probe.graph.output.append(helper.make_tensor_value_info(COMPONENT, TensorProto.INT64, ["batch"]))
    return probe


def parity(prior: GaussianMixturePrior, proto: onnx.ModelProto | None = None) -> ParityReport:
    """The prior graph (`proto`, else `prior.to_onnx()`) in onnxruntime against `sample_numpy` on `parity_noise`.

    In order, each failure a ParityError: output names and shapes, then the
    component of every row (its share of rows that picked another component
    than numpy, recorded as `component_mismatch`, must be 0), then z within
    PARITY_TOLERANCE. Returns the checks, graph "prior", for the card.
    """
    import onnxruntime

    proto = prior.to_onnx() if proto is None else proto
    check_graph(proto, [NOISE_INPUT])
    probe = component_probe(proto)  # the values are checked on the graph itself
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    graph = onnxruntime.InferenceSession(proto.SerializeToString(), options, providers=providers)
    components = onnxruntime.InferenceSession(probe.SerializeToString(), options, providers=providers)
    report = ParityReport()
    for what, u in parity_noise(prior).items():
        got = dict(zip([o.name for o in graph.get_outputs()], graph.run(None, {NOISE_INPUT: u}), strict=True))
        expected = {PRIOR_OUTPUT: prior.sample_numpy(u)}
        if list(got) == list(expected) and got[PRIOR_OUTPUT].shape == expected[PRIOR_OUTPUT].shape:
            picked = components.run([COMPONENT], {NOISE_INPUT: u})[0]
            differ = int(np.count_nonzero(picked != prior.component(u)))
            if differ:
                raise ParityError(f"prior on {what}: {differ} of {len(u)} rows picked another component than numpy")
        compare("prior", what, expected, got, report, reference="numpy")
        report.checks[-1]["component_mismatch"] = 0.0
    return report
