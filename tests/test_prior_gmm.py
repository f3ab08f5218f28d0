"""The Gaussian-mixture prior graph (vae_gen.export.prior_gmm): its samples follow the fitted mixture, it is its numpy
reference row for row, it holds no random op, and image i's z depends on its own noise row alone.

TensorFlow-free: the graph is built with onnx.helper and run with onnxruntime.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("onnx")

import onnx
import onnxruntime

from vae_gen.errors import InvalidArgumentError
from vae_gen.export.graph_rules import RANDOM_OPS, graph_op_types
from vae_gen.export.parity_checks import ParityError
from vae_gen.export.prior_gmm import (
    UNSCALED_NOISE,
    GaussianMixturePrior,
    component_probe,
    fit_gmm,
    parity,
    scale_noise,
)

#: The synthetic mixture the prior is fitted to: 3 components in 4 dimensions.
TRUE_WEIGHTS = np.array([0.5, 0.3, 0.2])
TRUE_MEANS = np.array([[0.0, 0.0, 0.0, 0.0], [4.0, -3.0, 1.0, 2.0], [-4.0, 3.0, -2.0, 1.0]])
FIT_POINTS = 20_000
SAMPLES = 200_000
#: Sampling-error bound of every statistical check, in standard errors.
SE_BOUND = 4.0


def true_covariances() -> np.ndarray:
    rng = np.random.default_rng(7)
    a = rng.normal(size=(3, 4, 4)) * 0.5
    return a @ a.transpose(0, 2, 1) + np.eye(4) * np.array([0.3, 0.6, 0.2])[:, None, None]


def session(proto: onnx.ModelProto) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def prior() -> GaussianMixturePrior:
    rng = np.random.default_rng(0)
    labels = rng.choice(3, FIT_POINTS, p=TRUE_WEIGHTS)
    chol = np.linalg.cholesky(true_covariances())
    z = TRUE_MEANS[labels] + np.einsum("nij,nj->ni", chol[labels], rng.standard_normal((FIT_POINTS, 4)))
    return fit_gmm(z, 3, seed=0)


@pytest.fixture(scope="module")
def drawn(prior):
    """200,000 noise rows ~ N(0, I) and what the graph makes of them: z and the component each row picked."""
    u = np.random.default_rng(1).standard_normal((SAMPLES, prior.noise_dim), dtype=np.float32)
    z, component = session(component_probe(prior.to_onnx())).run(["z", "component"], {"noise": u})
    return u, z, component


def test_the_fit_finds_the_synthetic_mixture(prior):
    """sklearn recovers the mixture the points came from (up to the components' order)."""
    assert prior.fitted["converged"] and prior.fitted["points"] == FIT_POINTS
    order = [int(np.argmin(np.linalg.norm(prior.means - m, axis=1))) for m in TRUE_MEANS]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(prior.weights[order], TRUE_WEIGHTS, atol=0.015)
    np.testing.assert_allclose(prior.means[order], TRUE_MEANS, atol=0.06)
    np.testing.assert_allclose(prior.covariances[order], true_covariances(), atol=0.1)
    assert prior.weights.dtype == prior.means.dtype == prior.cholesky.dtype == np.float64
    assert prior.cholesky.shape == (3, 4, 4) and not np.triu(prior.cholesky, 1).any()


def test_component_frequencies_are_the_fitted_weights(prior, drawn):
    _, _, component = drawn
    frequencies = np.bincount(component, minlength=3) / SAMPLES
    standard_errors = np.sqrt(prior.weights * (1 - prior.weights) / SAMPLES)
    assert np.all(np.abs(frequencies - prior.weights) <= SE_BOUND * standard_errors), (frequencies, prior.weights)


def test_each_component_has_its_fitted_mean_and_covariance(prior, drawn):
    _, z, component = drawn
    for k in range(3):
        samples = z[component == k].astype(np.float64)
        n, sigma = len(samples), prior.covariances[k]
        mean_se = np.sqrt(np.diag(sigma) / n)
        assert np.all(np.abs(samples.mean(axis=0) - prior.means[k]) <= SE_BOUND * mean_se), k
        # The standard error of a Gaussian sample covariance: sqrt((sigma_ij^2 + sigma_ii sigma_jj) / n).
        cov_se = np.sqrt((sigma**2 + np.outer(np.diag(sigma), np.diag(sigma))) / n)
        assert np.all(np.abs(np.cov(samples, rowvar=False) - sigma) <= SE_BOUND * cov_se), k


def test_graph_is_its_numpy_reference(prior, drawn):
    u, z, component = drawn
    np.testing.assert_array_equal(component, prior.component(u))
    assert np.max(np.abs(z - prior.sample_numpy(u))) <= 1e-6


def test_numpy_reference_is_the_mixture_in_float64(prior, drawn):
    """The float32 reference is mu_k + L_k u[1:] of its row's component, to float32 rounding."""
    u = drawn[0][:5000]
    k = prior.component(u)
    exact = prior.means[k] + np.einsum("nij,nj->ni", prior.cholesky[k], u[:, 1:].astype(np.float64))
    np.testing.assert_allclose(prior.sample_numpy(u), exact, rtol=1e-6, atol=1e-6)


def test_graph_has_no_random_op_and_a_dynamic_batch(prior):
    proto = prior.to_onnx()
    onnx.checker.check_model(proto, full_check=True)
    assert not graph_op_types(proto) & RANDOM_OPS
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [17]
    (noise,) = proto.graph.input
    (z,) = proto.graph.output
    assert (noise.name, z.name) == ("noise", "z")
    assert noise.type.tensor_type.elem_type == z.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [(d.dim_param, d.dim_value) for d in noise.type.tensor_type.shape.dim] == [("batch", 0), ("", 5)]
    assert [(d.dim_param, d.dim_value) for d in z.type.tensor_type.shape.dim] == [("batch", 0), ("", 4)]
    run = session(proto)
    for batch in (1, 7, 300):
        assert run.run(None, {"noise": np.zeros((batch, 5), np.float32)})[0].shape == (batch, 4)


def test_each_row_depends_on_its_own_noise_alone(prior, drawn):
    """One batch, batches of 7 and single rows give the same z, bit for bit: batching never changes an image."""
    u, z, _ = drawn
    run = session(prior.to_onnx())
    n = 7 * 1001
    in_sevens = np.concatenate([run.run(None, {"noise": u[lo : lo + 7]})[0] for lo in range(0, n, 7)])
    np.testing.assert_array_equal(in_sevens, z[:n])
    singles = np.concatenate([run.run(None, {"noise": u[i : i + 1]})[0] for i in range(200)])
    np.testing.assert_array_equal(singles, z[:200])


def test_u0_on_a_boundary_picks_the_same_component_in_graph_and_numpy(prior):
    """u0 exactly on the quantile q_j of the cumulative weight c_j is in component j + 1 (c_j <= Phi(u0)); one
    float32 step below it, in component j. The graph compares float32 with float32, so it agrees row for row."""
    q = prior.quantiles()
    assert q.dtype == np.float32 and np.isposinf(q[-1]) and np.all(np.diff(q) > 0)
    from scipy.special import ndtr

    np.testing.assert_allclose(ndtr(q[:-1].astype(np.float64)), np.cumsum(prior.weights)[:-1], atol=1e-7)
    u0 = np.concatenate([np.nextafter(q[:-1], np.float32(-np.inf)), q[:-1], np.nextafter(q[:-1], np.float32(np.inf))])
    u = np.concatenate([u0[:, None], np.zeros((len(u0), 4), np.float32)], axis=1)
    expected = np.array([0, 1, 1, 2, 1, 2])
    np.testing.assert_array_equal(prior.component(u), expected)
    np.testing.assert_array_equal(session(component_probe(prior.to_onnx())).run(["component"], {"noise": u})[0], expected)
    # Far out, u0 = +-inf and NaN still pick a component (the last, the first, the first), never an index out of range.
    extreme = np.zeros((3, 5), np.float32)
    extreme[:, 0] = [np.inf, -np.inf, np.nan]
    np.testing.assert_array_equal(prior.component(extreme), [2, 0, 0])
    np.testing.assert_array_equal(session(component_probe(prior.to_onnx())).run(["component"], {"noise": extreme})[0], [2, 0, 0])


def test_parity_passes_and_reports_no_component_mismatch(prior):
    report = parity(prior)
    inputs = [c["inputs"] for c in report.checks]
    assert inputs[:3] == ["N(0, I) batch 1", "N(0, I) batch 7", "N(0, I) batch 256"]
    assert any(i.startswith("far") for i in inputs) and any("boundaries" in i for i in inputs)
    assert all(c["graph"] == "prior" and c["component_mismatch"] == 0.0 for c in report.checks)
    assert report.graph_max("prior") <= report.tolerance


def test_parity_refuses_a_graph_that_picks_other_components(prior):
    other = GaussianMixturePrior(prior.weights[::-1].copy(), prior.means, prior.cholesky)
    with pytest.raises(ParityError, match="picked another component than numpy"):
        parity(prior, other.to_onnx())
    shifted = GaussianMixturePrior(prior.weights, prior.means + 1e-3, prior.cholesky)
    with pytest.raises(ParityError, match=r"max \|numpy - onnx\|"):
        parity(prior, shifted.to_onnx())


def test_temperature_scales_the_spread_and_keeps_the_component_frequencies(prior, drawn):
    """scale_noise leaves u0 alone: every row keeps its component, and its offset from the mean scales by T.
    Scaling u0 as well would move the frequencies (at T = 0.5, far beyond sampling error)."""
    u, z, component = drawn
    u = u[:20_000]
    assert UNSCALED_NOISE == 1
    cooled = scale_noise(u, 0.5)
    np.testing.assert_array_equal(cooled[:, 0], u[:, 0])
    np.testing.assert_array_equal(prior.component(cooled), component[:20_000])
    k = component[:20_000]
    np.testing.assert_allclose(prior.sample_numpy(cooled) - prior.means[k], 0.5 * (z[:20_000] - prior.means[k]), atol=1e-5)
    everything_scaled = np.bincount(prior.component(u * np.float32(0.5)), minlength=3) / len(u)
    assert np.max(np.abs(everything_scaled - prior.weights)) > 0.05


def test_a_one_component_mixture_is_one_gaussian(prior):
    single = GaussianMixturePrior(np.ones(1), prior.means[:1], prior.cholesky[:1])
    u = np.random.default_rng(3).standard_normal((50, 5), dtype=np.float32)
    z = session(single.to_onnx()).run(None, {"noise": u})[0]
    assert np.max(np.abs(z - single.sample_numpy(u))) <= 1e-6
    np.testing.assert_array_equal(single.component(u), np.zeros(50))
    assert parity(single).max_abs_diff <= 1e-6


@pytest.mark.parametrize(
    ("weights", "means", "cholesky", "message"),
    [
        ([0.5, 0.6], np.zeros((2, 2)), np.tile(np.eye(2), (2, 1, 1)), "sum to 1"),
        ([1.0], np.zeros((1, 2)), np.ones((1, 2, 2)), "lower-triangular"),
        ([1.0], np.zeros((1, 2)), np.eye(3)[None], r"\[K, d, d\]"),
        ([1.0], np.full((1, 2), np.nan), np.eye(2)[None], "finite"),
    ],
)
def test_a_malformed_mixture_is_refused(weights, means, cholesky, message):
    with pytest.raises(InvalidArgumentError, match=message):
        GaussianMixturePrior(np.array(weights), means, cholesky)


def test_bad_fits_and_noise_are_refused(prior):
    with pytest.raises(InvalidArgumentError, match="components must be an integer >= 1"):
        fit_gmm(np.zeros((10, 2)), 0, seed=0)
    with pytest.raises(InvalidArgumentError, match="n >= 5 components"):
        fit_gmm(np.zeros((4, 2)), 5, seed=0)
    with pytest.raises(InvalidArgumentError, match=r"noise must be \[n, 5\]"):
        prior.sample_numpy(np.zeros((3, 4), np.float32))


def test_importing_it_does_not_load_tensorflow():
    code = "import sys, vae_gen.export.prior_gmm; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
