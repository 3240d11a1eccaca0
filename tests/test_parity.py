"""The three tabs of the DCGAN chapter are one model (issue 8, section 1).

From the same weights (``tools/parity/weights.py`` documents the neutral file),
the same latent batch Z and the same real batch X, each framework runs in its
own environment (``tools/parity/run.py``): G(Z), D(X), D(G(Z)) in training
mode, then one ``d2l.update_D`` and one ``d2l.update_G`` with SGD at learning
rate 1, which turns the weight change into the gradient. Every pair of
frameworks must agree, in float32 as the issue asks (outputs within 1e-4
absolute, losses within 1e-4 relative, each gradient tensor within 1e-3
relative), and in float64 1000 times more tightly: there, rounding puts an
input on a ReLU's kink far more rarely (``tools/parity/compare.py`` says why).

A tooling test: it runs in envs/tools (which needs NumPy) and starts
``envs/<framework>/bin/python`` itself; a missing environment skips its pairs.
The framework runs read the split notebooks (``make build/split/.stamp``).
"""
import itertools

import pytest

np = pytest.importorskip(
    "numpy", reason="the parity test compares arrays: envs/tools needs numpy "
                    "(requirements/tools.txt)")

from tools import FRAMEWORKS  # noqa: E402  (after the NumPy check)
from tools.parity.compare import GRADIENT_PREFIX, TOLERANCES, compare_results, failures, summary  # noqa: E402
from tools.parity.driver import parity_inputs, run_frameworks  # noqa: E402
from tools.parity.run import DTYPES  # noqa: E402
from tools.parity.weights import (  # noqa: E402
    check_complete,
    dcgan_layers,
    initial_weights,
    save_arrays,
    statistic_names,
    trainable_names,
)

PAIRS = list(itertools.combinations(FRAMEWORKS, 2))
#: Seed 0 keeps every (leaky) ReLU input at least 2e-6 of its layer's RMS away
#: from the kink, 10x or more the float32 rounding error measured at those
#: elements; about every second seed does not (see tools/parity/compare.py).
SEED = 0


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{framework: driver.Run}: all three frameworks at once, on one input file."""
    folder = tmp_path_factory.mktemp("parity")
    inputs = folder / "inputs.npz"
    save_arrays(inputs, parity_inputs(SEED))
    return run_frameworks(FRAMEWORKS, inputs, folder, DTYPES)


def results_of(runs, framework, dtype):
    """A framework's results; skips if its environment is missing, fails if it crashed."""
    run = runs[framework]
    if run.missing:
        pytest.skip(run.error)
    if run.error:
        pytest.fail(f"{framework} run failed: {run.error}", pytrace=False)
    return run.results[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pair", PAIRS, ids="-vs-".join)
def test_frameworks_agree_on_outputs_losses_and_gradients(runs, pair, dtype):
    a, b = (results_of(runs, framework, dtype) for framework in pair)
    checks = compare_results(a, b, TOLERANCES[dtype])
    print(summary(f"{dtype} {pair[0]} vs {pair[1]}", checks))  # shown with -s or -rA
    assert not failures(checks), "\n".join(str(check) for check in failures(checks))


# Parametrized as "tab", not "framework": conftest deselects tests whose
# "framework" parameter is not the environment's, and these run in envs/tools.
@pytest.mark.parametrize("tab", FRAMEWORKS)
def test_every_tensor_gets_a_finite_nonzero_gradient(runs, tab):
    # Two frameworks that both failed to step would agree on zero gradients.
    results = results_of(runs, tab, "float32")
    names = trainable_names(dcgan_layers())
    norms = {name: np.linalg.norm(results[GRADIENT_PREFIX + name]) for name in names}
    assert all(np.isfinite(norm) and norm > 0 for norm in norms.values()), norms


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tab", FRAMEWORKS)
def test_losses_are_the_sections_summed_cross_entropies_of_the_outputs(runs, tab, dtype):
    # Both updates start from the forward pass's weights, so their losses must be
    # the section's L_D = 1/2 sum[softplus(-D(x)) + softplus(D(G(z)))] and
    # L_G = sum softplus(-D(G(z))) of the outputs: sums, not means.
    results = results_of(runs, tab, dtype)
    real, fake = (results[name].astype(np.float64) for name in ("D_of_X", "D_of_G_of_Z"))
    expected_D = (np.logaddexp(0, -real).sum() + np.logaddexp(0, fake).sum()) / 2
    expected_G = np.logaddexp(0, -fake).sum()
    rel = 1e-5 if dtype == "float32" else 1e-12
    assert float(results["loss_D"]) == pytest.approx(expected_D, rel=rel)
    assert float(results["loss_G"]) == pytest.approx(expected_G, rel=rel)


# --- the comparison itself, on synthetic results (no framework needed) ---------

SMALL_LAYERS = dcgan_layers(latent_dim=8, n_G=2, n_D=2)


def synthetic_results(seed):
    """Results shaped like ``run.py``'s (small networks): outputs, losses, gradients."""
    rng = np.random.default_rng(seed)
    shapes = {"G_of_Z": (4, 3, 64, 64), "D_of_X": (4, 1, 1, 1), "D_of_G_of_Z": (4, 1, 1, 1)}
    results = {name: rng.normal(size=shape).astype(np.float32) for name, shape in shapes.items()}
    results.update(loss_D=np.float64(2.76), loss_G=np.float64(3.36))
    weights = initial_weights(seed, SMALL_LAYERS)
    results.update({GRADIENT_PREFIX + name: 50 * weights[name].astype(np.float64)
                    for name in trainable_names(SMALL_LAYERS)})
    return results


def keras_round_trip_with_swapped_spatial_axes(kernel):
    """A D kernel (out, in, kh, kw) sent to Keras' (kh, kw, in, out) and brought
    back with the wrong inverse (3, 2, 1, 0) instead of (3, 2, 0, 1): the shape
    survives (square kernels) but kh and kw are swapped."""
    return kernel.transpose(2, 3, 1, 0).transpose(3, 2, 1, 0)


def test_comparison_names_the_one_wrongly_transposed_kernel():
    correct = synthetic_results(0)
    broken = dict(correct)
    key = GRADIENT_PREFIX + "D.2.conv.weight"
    broken[key] = keras_round_trip_with_swapped_spatial_axes(correct[key])
    assert broken[key].shape == correct[key].shape
    bad = failures(compare_results(correct, broken))
    assert [(check.kind, check.name) for check in bad] == [("gradient", "D.2.conv.weight")]
    assert bad[0].error > 0.5  # a permuted random kernel is not close at all


def test_comparison_passes_float32_rounding_and_fails_past_each_tolerance():
    correct = synthetic_results(0)
    rounded = {name: value * (1 + 1e-6) for name, value in correct.items()}
    assert not failures(compare_results(correct, rounded))
    off = dict(correct)
    off["D_of_X"] = correct["D_of_X"] + 2e-4           # absolute: 2e-4 > 1e-4
    off["loss_G"] = correct["loss_G"] * (1 + 2e-4)     # relative: 2e-4 > 1e-4
    off[GRADIENT_PREFIX + "G.1.bn.beta"] = correct[GRADIENT_PREFIX + "G.1.bn.beta"] * 1.002
    assert {check.name for check in failures(compare_results(correct, off))} == {
        "D_of_X", "loss_G", "G.1.bn.beta"}


def test_comparison_fails_a_missing_or_misshapen_tensor_instead_of_broadcasting():
    correct = synthetic_results(0)
    broken = dict(correct)
    del broken[GRADIENT_PREFIX + "G.4.conv.weight"]
    broken["D_of_X"] = correct["D_of_X"].reshape(4, 1)  # would broadcast to (4, 4, ...)
    bad = {check.name: check.error for check in failures(compare_results(correct, broken))}
    assert bad == {"G.4.conv.weight": float("inf"), "D_of_X": float("inf")}


def test_initial_weights_follow_the_chapter_and_the_layout():
    layers = dcgan_layers()
    weights = initial_weights(0, layers)
    check_complete(weights, layers)  # every key, PyTorch's shapes
    assert weights["G.0.conv.weight"].shape == (100, 512, 4, 4)  # (in, out, kh, kw)
    assert weights["D.0.conv.weight"].shape == (64, 3, 4, 4)     # (out, in, kh, kw)
    trained = np.concatenate([weights[name].ravel() for name in trainable_names(layers)])
    assert trained.dtype == np.float32 and abs(trained.std() - 0.02) < 1e-4
    for name in statistic_names(layers):
        assert np.all(weights[name] == (0 if name.endswith("mean") else 1))
    again = initial_weights(0, layers)
    assert all(np.array_equal(weights[name], again[name]) for name in weights)


def test_check_complete_names_what_is_wrong():
    layers = dcgan_layers()
    weights = initial_weights(0, layers)
    weights["D.1.conv.weight"] = weights["D.1.conv.weight"].transpose(1, 0, 2, 3)
    del weights["G.3.bn.gamma"]
    with pytest.raises(ValueError, match=r"G\.3\.bn\.gamma.*D\.1\.conv\.weight"):
        check_complete(weights, layers)
