"""JAX's ``Conv`` and ``ConvTranspose`` compute what ``lax`` computes, values and gradients.

The shim rewrites convolutions into forms XLA's CPU backend runs fast (input
gradients over 2 x 2 blocks, per output phase or from image patches, kernels
covering the input as matrix products); each form is checked here against
``lax.conv_general_dilated`` and ``lax.conv_transpose`` on the chapter's layer
shapes and on ones where no rewrite applies. The cross-framework parity test
checks the whole networks.
"""
import numpy as np
import pytest

#: (batch, side, in channels, out channels, stride, padding): the chapter's
#: layers (patches, phases, 2 x 2 blocks), phases with other paddings and
#: stride 4, a kernel covering its input, odd sides (no blocks, no phases),
#: stride 3.
SHAPES = [(2, 16, 3, 8, 2, 1), (2, 8, 8, 16, 2, 1), (2, 32, 8, 4, 2, 1),
          (2, 8, 8, 4, 2, 0), (2, 8, 8, 4, 2, 2), (2, 8, 8, 6, 4, 0), (2, 4, 16, 1, 1, 0),
          (2, 2, 8, 4, 1, 1), (2, 9, 4, 6, 2, 1), (2, 12, 4, 6, 3, 0), (2, 7, 4, 6, 1, 2)]
NHWC = ("NHWC", "HWIO", "NHWC")


# conftest's framework fixture, for JAX alone (deselected in the other environments)
pytestmark = pytest.mark.parametrize("framework", ["jax"], indirect=True)


def reference_conv(X, W, stride, padding):
    from jax import lax
    return lax.conv_general_dilated(X, W, (stride, stride), [(padding, padding)] * 2,
                                    dimension_numbers=NHWC)


def reference_conv_transpose(X, W, stride, padding):
    from jax import lax
    k = W.shape[0]
    return lax.conv_transpose(X, W, (stride, stride), [(k - 1 - padding,) * 2] * 2,
                              dimension_numbers=NHWC, transpose_kernel=True)


def values_and_gradients(function, X, W, stride, padding):
    import jax
    Y = function(X, W, stride, padding)
    cotangent = jax.random.normal(jax.random.key(2), Y.shape)
    _, pullback = jax.vjp(lambda X, W: function(X, W, stride, padding), X, W)
    return (Y, *pullback(cotangent))


def assert_close(found, expected):
    for f, e in zip(found, expected, strict=True):
        assert f.shape == e.shape
        np.testing.assert_allclose(np.asarray(f), np.asarray(e), rtol=1e-5,
                                   atol=1e-5 * float(np.abs(np.asarray(e)).max()))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_conv_matches_lax(d2l, shape):
    import jax
    N, side, C, C_out, stride, padding = shape
    key_X, key_W = jax.random.split(jax.random.key(0))
    X = jax.random.normal(key_X, (N, side, side, C))
    W = jax.random.normal(key_W, (4, 4, C, C_out))
    assert_close(values_and_gradients(d2l._conv2d, X, W, stride, padding),
                 values_and_gradients(reference_conv, X, W, stride, padding))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_conv_transpose_matches_lax(d2l, shape):
    import jax
    N, side, C, C_out, stride, padding = shape
    key_X, key_W = jax.random.split(jax.random.key(1))
    # the transposed convolution maps what conv2d outputs back to its input's shape
    Y_shape = reference_conv(np.zeros((N, side, side, C), np.float32),
                             np.zeros((4, 4, C, C_out), np.float32), stride, padding).shape
    X = jax.random.normal(key_X, Y_shape)
    W = jax.random.normal(key_W, (4, 4, C, C_out))
    found = values_and_gradients(d2l._conv2d_transpose, X, W, stride, padding)
    assert found[0].shape[1:3] == (side - (side + 2 * padding - 4) % stride,) * 2
    assert_close(found, values_and_gradients(reference_conv_transpose, X, W, stride, padding))


def test_shapes_cover_every_form(d2l):
    """SHAPES reach every form an input gradient can take, so the tests above check each."""
    import jax.numpy as jnp
    forms = set()
    for N, side, C, C_out, stride, padding in SHAPES:
        form = d2l._linear_form((N, side, side, C), jnp.zeros((4, 4, C, C_out)), stride, padding)
        forms.add("phases" if form is None else form.func.__name__)
    assert forms == {"_conv_covering", "_conv_patches", "_conv_blocks", "phases", "_conv_lax"}


def test_layers_run_the_rewritten_convolutions(d2l):
    """``Conv``/``ConvTranspose`` are Flax's layers (same parameters) computed by the shim."""
    import jax.numpy as jnp
    from flax import nnx
    conv = d2l.Conv(3, 8, 4, 2, padding=1, rngs=nnx.Rngs(0))
    up = d2l.ConvTranspose(8, 3, 4, 2, padding=1, rngs=nnx.Rngs(0))
    assert isinstance(conv, nnx.Conv) and isinstance(up, nnx.ConvTranspose)
    assert conv.kernel.shape == (4, 4, 3, 8) and up.kernel.shape == (4, 4, 3, 8)
    X = jnp.ones((2, 16, 16, 3))
    assert_close([conv(X)], [reference_conv(X, conv.kernel[...], 2, 1)])
    Y = conv(X)
    assert_close([up(Y)], [reference_conv_transpose(Y, up.kernel[...], 2, 1)])
    with pytest.raises(ValueError, match="no bias"):
        d2l.Conv(3, 8, 4, use_bias=True, rngs=nnx.Rngs(0))


def test_importing_the_shim_leaves_convolutions_to_eigen(d2l):
    """In a fresh process, importing the shim moves XLA's convolutions from
    YNNPACK to Eigen, and a choice the user made in XLA_FLAGS stays."""
    import os
    import subprocess
    import sys
    program = ("import os, jax, jax.numpy as jnp\n"
               "{import_shim}\n"
               "X, W = jnp.ones((16, 32, 32, 64)), jnp.ones((4, 4, 64, 128))\n"
               "conv = jax.jit(lambda X, W: jax.lax.conv_general_dilated(\n"
               "    X, W, (2, 2), [(1, 1)] * 2, dimension_numbers=('NHWC', 'HWIO', 'NHWC')))\n"
               "print(os.environ.get('XLA_FLAGS', ''))\n"
               "print('ynn_fusion' in conv.lower(X, W).compile().as_text())\n")

    def run(import_shim, xla_flags=""):
        env = {**os.environ, "XLA_FLAGS": xla_flags}
        code = program.format(import_shim="from d2l_shim import jax as d2l" if import_shim else "")
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True)
        flags, ynn = done.stdout.rstrip("\n").rsplit("\n", 1)
        return flags, ynn == "True"
    assert run(import_shim=False) == ("", True)
    assert run(import_shim=True) == (d2l._CPU_KERNELS_FLAG, False)
    own = "--xla_cpu_experimental_ynn_fusion_type=individual_convolution"
    assert run(import_shim=True, xla_flags=own)[0] == own
