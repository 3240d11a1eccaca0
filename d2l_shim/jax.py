"""JAX side of the shim (Flax NNX, optax): the per-framework names of ``d2l_shim.api``.

Images are NHWC, as XLA's convolutions prefer: real batches X are
(N, 64, 64, 3), latents Z are (N, 1, 1, latent_dim) and the discriminator
returns logits (N, 1, 1, 1). Networks are ``nnx.Module`` objects, trainers
``nnx.Optimizer`` objects over their ``nnx.Param`` variables, and a loss is a
function ``loss(logits, labels)`` returning the batch's sum. Each update runs
as one ``nnx.jit``-compiled program, traced once per batch shape and loss.
"""
import contextlib
import functools
import os
import random
import sys

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from . import checkpoints, fashion_mnist, hub, plotting, swd, training
from ._exports import *  # noqa: F403  (the framework-free names)
from .api import FRAMEWORK_ONLY, PUBLIC_NAMES

__all__ = [*PUBLIC_NAMES, *FRAMEWORK_ONLY["jax"]]

#: The XLA flag of ``_choose_cpu_kernels``, and the jaxlib releases it was
#: measured on (requirements/jax.txt).
_CPU_KERNELS_FLAG = "--xla_cpu_experimental_ynn_fusion_type=reduce,individual_dot"
_CPU_KERNELS_RELEASES = ("0.10.",)


def _choose_cpu_kernels():
    """Have XLA's CPU backend leave convolutions to its Eigen kernels, faster
    here than YNNPACK's, while YNNPACK keeps reductions and matrix products.

    Takes effect if no computation has run yet (the backend reads XLA_FLAGS
    once); an experimental flag, so only for the releases it was tried on
    and only if the user set no choice of their own.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if jax.__version__.startswith(_CPU_KERNELS_RELEASES) and "ynn_fusion_type" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {_CPU_KERNELS_FLAG}".strip()


_choose_cpu_kernels()

#: Where compiled programs outlive the process unless $JAX_COMPILATION_CACHE_DIR
#: says otherwise (empty: no cache), and how large that folder may grow.
_COMPILATION_CACHE = os.path.join(hub.CACHE_ROOT, "jax-compilation")
_COMPILATION_CACHE_BYTES = 512 * 2**20


def _cache_compilations():
    """Keep XLA's programs on disk, so that a rerun of a notebook, or the next
    process of the test suite, loads them instead of compiling them again
    (JAX's own persistent cache, least recently used entries evicted). Small
    programs too: a notebook compiles hundreds, random draws of every weight
    shape among them, and loading one is quicker than compiling it."""
    if "JAX_COMPILATION_CACHE_DIR" in os.environ or jax.config.jax_compilation_cache_dir:
        return
    folder = os.path.expanduser(_COMPILATION_CACHE)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return  # an unwritable home: JAX would warn at every compilation
    if os.access(folder, os.W_OK):
        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_compilation_cache_max_size", _COMPILATION_CACHE_BYTES)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


_cache_compilations()

_NHWC = ("NHWC", "HWIO", "NHWC")


def num_gpus():
    """The number of GPUs visible to JAX."""
    return len(_gpus())


def _gpus():
    return [device for device in jax.devices() if device.platform == "gpu"]


def try_gpu(i=0):
    """GPU ``i`` if it exists, else the first CPU device."""
    gpus = _gpus()
    return gpus[i] if len(gpus) > i else jax.devices("cpu")[0]


def numpy(x):
    """A NumPy copy of an array (any device); NumPy arrays pass through."""
    return np.asarray(jax.device_get(x))


def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
    """Plot a grid of images (N, H, W, C) given as a JAX or NumPy array."""
    return plotting.show_images(numpy(imgs), num_rows, num_cols, titles, scale)


def count_parameters(net):
    """The number of trainable scalars (``nnx.Param``) in ``net``."""
    return sum(leaf.size for leaf in jax.tree.leaves(nnx.state(net, nnx.Param)))


def set_seed(seed, epoch=None):
    """Seed Python and NumPy (with an ``epoch``, from ``(seed, epoch)``).

    JAX itself has no global generator: its draws come from explicit keys, so
    a chapter derives its keys from the same (seed, epoch) pair.
    """
    if epoch is not None:
        seed = checkpoints.epoch_seed(seed, epoch)
    random.seed(seed)
    np.random.seed(seed)


class Conv(nnx.Conv):
    """``nnx.Conv`` (square kernel, equal padding on every side) computed by
    ``_conv2d``, whose gradients XLA's CPU backend runs fast."""

    def __init__(self, in_features, out_features, kernel_size, strides=1, *,
                 padding=0, use_bias=False, rngs):
        if use_bias:
            raise ValueError("Conv here has no bias (batch norm follows it)")
        k = kernel_size
        super().__init__(in_features, out_features, (k, k), (strides, strides),
                         padding=[(padding, padding)] * 2, use_bias=False, rngs=rngs)
        self.conv_padding = padding

    def __call__(self, X):
        return _conv2d(X, self.kernel[...], self.strides[0], self.conv_padding)


class ConvTranspose(nnx.ConvTranspose):
    """``nnx.ConvTranspose`` with ``transpose_kernel=True`` and explicit padding,
    computed by ``_conv2d_transpose``.

    The layer is the gradient of ``nnx.Conv`` (stride s, padding p per side)
    with respect to its input, as in PyTorch and Keras.
    """

    def __init__(self, in_features, out_features, kernel_size, strides=1, *,
                 padding=0, use_bias=False, rngs):
        if use_bias:
            raise ValueError("ConvTranspose here has no bias (batch norm follows it)")
        k = kernel_size
        super().__init__(in_features, out_features, (k, k), (strides, strides),
                         padding=[(k - 1 - padding, k - 1 - padding)] * 2,
                         use_bias=False, transpose_kernel=True, rngs=rngs)
        self.conv_padding = padding

    def __call__(self, X):
        return _conv2d_transpose(X, self.kernel[...], self.strides[0], self.conv_padding)


# XLA's CPU backend runs a strided convolution and its kernel gradient fast, but
# its input gradient (a convolution of a dilated input) slowly. The same numbers
# come from a stride-1 convolution over 2 x 2 blocks of pixels stacked as
# channels ("space to depth"), from one stride-1 convolution per output pixel
# phase ("sub-pixel"), or, for an input with few channels, from a matrix product
# with copied image patches. A kernel that covers the whole input is a matrix product.

#: Up to this many numbers per output pixel (kernel taps x input channels),
#: an input gradient comes from a matrix product with image patches and a
#: kernel gradient from 2 x 2 blocks.
_PATCH_SIZE = 64
#: Input gradients of convolutions with smaller outputs run one convolution per
#: phase: the blocks' extra border row and column would cost more than they save.
_BLOCKS_MIN_SIDE = 16


def _conv2d(X, W, stride, padding):
    """``lax.conv_general_dilated`` on NHWC images X and HWIO kernels W with a
    square ``stride`` and ``padding`` pixels on every side."""
    if _covers_input(X.shape, W, padding):
        return _conv_covering(X, W, padding)
    return _conv(X, W, stride, padding)


def _conv2d_transpose(X, W, stride, padding):
    """The gradient of ``_conv2d(·, W, stride, padding)`` with respect to its
    input, applied to X: a transposed convolution (``nnx.ConvTranspose`` with
    ``transpose_kernel=True``; W is the convolution's HWIO kernel)."""
    shape = _conv_input_shape(X.shape, W, stride, padding)
    if _covers_input(shape, W, padding):
        return _input_gradient(X, W, shape, stride, padding)
    return _conv_transpose(X, W, stride, padding)


def _conv_input_shape(shape, W, stride, padding):
    N, H, Wd, _ = shape
    k = W.shape[0]
    return N, stride * (H - 1) + k - 2 * padding, stride * (Wd - 1) + k - 2 * padding, W.shape[2]


def _covers_input(shape, W, padding):
    return shape[1] + 2 * padding == W.shape[0] and shape[2] + 2 * padding == W.shape[1]


def _conv_output_side(side, W, stride, padding):
    return (side + 2 * padding - W.shape[0]) // stride + 1


def _few_channels(W):
    """Whether the kernel has at most _PATCH_SIZE numbers per output pixel."""
    return W.shape[0] * W.shape[1] * W.shape[2] <= _PATCH_SIZE


def _blocks_fit(shape, W, stride, padding):
    """Whether the padded image and the kernel split into whole stride x stride blocks."""
    k = W.shape[0]
    return (k % stride == 0
            and (shape[1] + 2 * padding) % stride == 0 and (shape[2] + 2 * padding) % stride == 0)


def _phases_fit(shape, W, stride, padding):
    """Whether ``_conv_phases`` applies: whole phases and no negative padding."""
    s, k = stride, W.shape[0]
    if s == 1 or k % s or shape[1] % s or shape[2] % s:
        return False
    return all(pad >= 0 for side in shape[1:3] for r in range(s)
               for pad in _phase_padding(side // s, _conv_output_side(side, W, s, padding),
                                         k // s, r, s, padding))


def _linear_form(shape, W, stride, padding):
    """X -> conv(X, W) for inputs of ``shape``, in the form whose transpose XLA
    runs fastest (None: ``_conv_phases`` computes the transpose directly)."""
    if _covers_input(shape, W, padding):
        return functools.partial(_conv_covering, W=W, padding=padding)
    if _blocks_fit(shape, W, stride, padding):
        if _few_channels(W):
            return functools.partial(_conv_patches, W=W, stride=stride, padding=padding)
        side = _conv_output_side(min(shape[1:3]), W, stride, padding)
        if stride > 1 and side >= _BLOCKS_MIN_SIDE:
            return functools.partial(_conv_blocks, W=W, stride=stride, padding=padding)
    if _phases_fit(shape, W, stride, padding):
        return None
    return functools.partial(_conv_lax, W=W, stride=stride, padding=padding)


def _padded(X, padding):
    return jnp.pad(X, ((0, 0), (padding, padding), (padding, padding), (0, 0)))


def _conv_lax(X, W, stride, padding):
    return jax.lax.conv_general_dilated(X, W, (stride, stride), [(padding, padding)] * 2,
                                        dimension_numbers=_NHWC)


def _blocks(X, W, stride, padding):
    """The padded image in stride x stride blocks stacked as channels, and the
    kernel rearranged to match: a stride-1 convolution of the two is conv(X, W)."""
    s, k, (C, C_out) = stride, W.shape[0], W.shape[2:]
    Xp = _padded(X, padding)
    N, H, Wd, _ = Xp.shape
    blocks = (Xp.reshape(N, H // s, s, Wd // s, s, C).transpose(0, 1, 3, 2, 4, 5)
              .reshape(N, H // s, Wd // s, s * s * C))
    W_blocks = (W.reshape(k // s, s, k // s, s, C, C_out).transpose(0, 2, 1, 3, 4, 5)
                .reshape(k // s, k // s, s * s * C, C_out))
    return blocks, W_blocks


def _conv_blocks(X, W, stride, padding):
    return _conv_lax(*_blocks(X, W, stride, padding), 1, 0)


def _conv_covering(X, W, padding):
    """conv(X, W) for a kernel as large as the padded input: one output pixel."""
    Xp = _padded(X, padding)
    return (Xp.reshape(len(Xp), -1) @ W.reshape(-1, W.shape[-1]))[:, None, None, :]


def _conv_patches(X, W, stride, padding):
    """conv(X, W) as one matrix product: every output pixel's patch times the kernel."""
    blocks, W_blocks = _blocks(X, W, stride, padding)
    taps, (_, H, Wd, _) = W_blocks.shape[0], blocks.shape
    Ho, Wo = H - taps + 1, Wd - taps + 1
    patches = jnp.concatenate([blocks[:, i:i + Ho, j:j + Wo] for i in range(taps)
                               for j in range(W_blocks.shape[1])], axis=-1)
    return patches @ W_blocks.reshape(-1, W.shape[-1])


def _phase_padding(side, out_side, taps, r, s, padding):
    """Low and high padding of phase r's stride-1 convolution along one axis."""
    low = taps - 1 - (r + padding) // s
    return low, side - out_side - low + taps - 1


def _conv_phases(dY, W, shape, stride, padding):
    """The transpose of conv(·, W, stride, padding) at inputs of ``shape``,
    applied to dY: output pixel (s i + r, s j + c) only meets kernel taps
    ≡ r + padding, c + padding (mod s), so each of the s x s phases is a
    stride-1 convolution of dY with those taps, flipped, and the phases
    interleave into the image."""
    s, (_, H, Wd, _) = stride, shape
    taps = W.shape[0] // s
    W_t = jnp.swapaxes(W, 2, 3)  # from the conv's output channels to its input's
    phases = [[jax.lax.conv_general_dilated(
        dY, W_t[(r + padding) % s::s, (c + padding) % s::s][::-1, ::-1], (1, 1),
        [_phase_padding(H // s, dY.shape[1], taps, r, s, padding),
         _phase_padding(Wd // s, dY.shape[2], taps, c, s, padding)],
        dimension_numbers=_NHWC) for c in range(s)] for r in range(s)]
    # (N, H/s, W/s, C) per phase (r, c) -> (N, H/s, r, W/s, c, C) -> (N, H, W, C)
    return jnp.stack([jnp.stack(row, axis=3) for row in phases], axis=2).reshape(shape)


def _input_gradient(dY, W, shape, stride, padding):
    """The gradient of _conv2d at an input of ``shape`` with respect to it, for cotangent dY."""
    conv = _linear_form(shape, W, stride, padding)
    if conv is None:
        return _conv_phases(dY, W, shape, stride, padding)
    return jax.linear_transpose(conv, jax.ShapeDtypeStruct(shape, dY.dtype))(dY)[0]


def _kernel_gradient(X, dY, W, stride, padding):
    """The gradient of _conv2d(X, ·, stride, padding) at W for cotangent dY; for an
    input with few channels (RGB images) XLA runs it faster over 2 x 2 blocks."""
    blocks = _blocks_fit(X.shape, W, stride, padding) and _few_channels(W)
    conv = _conv_blocks if blocks else _conv_lax
    _, pullback = jax.vjp(lambda W: conv(X, W, stride, padding), W)
    return pullback(dY)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv(X, W, stride, padding):
    return _conv_lax(X, W, stride, padding)


def _conv_forward(X, W, stride, padding):
    return _conv(X, W, stride, padding), (X, W)


def _conv_backward(stride, padding, saved, dY):
    X, W = saved
    return (_input_gradient(dY, W, X.shape, stride, padding),
            _kernel_gradient(X, dY, W, stride, padding))


_conv.defvjp(_conv_forward, _conv_backward)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_transpose(X, W, stride, padding):
    return _input_gradient(X, W, _conv_input_shape(X.shape, W, stride, padding), stride, padding)


def _conv_transpose_forward(X, W, stride, padding):
    return _conv_transpose(X, W, stride, padding), (X, W)


def _conv_transpose_backward(stride, padding, saved, dY):
    X, W = saved
    # Y = conv^T(X): dX = conv(dY), and dW is conv's kernel gradient at input dY, cotangent X.
    return _conv_lax(dY, W, stride, padding), _kernel_gradient(dY, X, W, stride, padding)


_conv_transpose.defvjp(_conv_transpose_forward, _conv_transpose_backward)


def save_checkpoint(path, net_D, net_G, trainer_D, trainer_G, history, seed):
    """Save both networks (parameters and BN statistics), both optimizers
    (Adam's moments and step counts), the history and the seed to ``path``,
    one ``.npz`` file replaced atomically; ``load_checkpoint`` restores it."""
    arrays = checkpoints.metadata("jax", history, seed)
    for name, obj in _checkpointed(net_D, net_G, trainer_D, trainer_G).items():
        state = {key: numpy(leaf) for key, leaf in _named_leaves(obj).items()}
        arrays.update(checkpoints.with_prefix(name, state))
    checkpoints.write_arrays_atomically(path, arrays)


def load_checkpoint(path, net_D, net_G, trainer_D, trainer_G, data_iter, seed):
    """Restore what ``save_checkpoint`` wrote to ``path``; return the history.

    Returns ``[]`` if ``path`` does not exist yet (a fresh run). Everything
    comes back bitwise, on the devices the networks are on now. ``data_iter``
    is not needed: the chapter's batches are shuffled by NumPy, which
    ``set_seed(seed, epoch)`` reseeds. Raises ``checkpoints.CheckpointError``,
    before changing anything, for a corrupt file or one written by another
    framework, for another model or with another seed.
    """
    if not os.path.exists(path):
        return []
    objects = _checkpointed(net_D, net_G, trainer_D, trainer_G)
    expected = {name: {key: leaf.shape for key, leaf in _named_leaves(obj).items()}
                for name, obj in objects.items()}
    history, parts = checkpoints.read_checked(path, "jax", seed, expected)
    for name, obj in objects.items():
        found = parts[name]
        state = nnx.state(obj)
        paths, treedef = jax.tree_util.tree_flatten_with_path(state)
        leaves = [jax.device_put(found[jax.tree_util.keystr(key)].astype(leaf.dtype),
                                 leaf.sharding) for key, leaf in paths]
        nnx.update(obj, jax.tree_util.tree_unflatten(treedef, leaves))
    return history


def _checkpointed(net_D, net_G, trainer_D, trainer_G):
    return {"net_D": net_D, "net_G": net_G, "trainer_D": trainer_D, "trainer_G": trainer_G}


def _named_leaves(obj):
    """A module's or optimizer's state as arrays named by their tree paths."""
    paths, _ = jax.tree_util.tree_flatten_with_path(nnx.state(obj))
    return {jax.tree_util.keystr(key): leaf for key, leaf in paths}


@contextlib.contextmanager
def _statistics_kept(net):
    """Run ``net`` in training mode without moving its BN running statistics."""
    saved = jax.tree.map(lambda value: value, nnx.state(net, nnx.BatchStat))
    try:
        yield
    finally:
        nnx.update(net, saved)


def _step_D(X, fake_X, net_D, loss, trainer_D):
    """D's step on a real batch and on fakes that carry no gradient."""
    def objective(net_D):
        real_Y, fake_Y = net_D(X), net_D(fake_X)
        return (loss(real_Y, jnp.ones_like(real_Y))
                + loss(fake_Y, jnp.zeros_like(fake_Y))) / 2
    loss_D, grads = nnx.value_and_grad(objective)(net_D)
    trainer_D.update(net_D, grads)
    return loss_D


def _generated(Z, net_G):
    """G(Z), the pullback to G's parameters, G's statistics after the pass."""
    graph, params, rest = nnx.split(net_G, nnx.Param, ...)

    def generate(params, rest):
        net = nnx.merge(graph, params, rest)
        return net(Z), nnx.state(net, nnx.BatchStat)
    return jax.vjp(generate, params, rest, has_aux=True)


def _step_G(fake_X, pullback, statistics, net_D, net_G, loss, trainer_G):
    """G's step on the fakes of ``_generated``; D's statistics stay put."""
    def objective(fake_X, net_D):
        with _statistics_kept(net_D):
            fake_Y = net_D(fake_X)
        return loss(fake_Y, jnp.ones_like(fake_Y))
    loss_G, d_fake_X = nnx.value_and_grad(objective)(fake_X, net_D)
    grads, _ = pullback(d_fake_X)  # through G to its parameters only
    trainer_G.update(net_G, grads)
    nnx.update(net_G, statistics)  # G's statistics move once: its own step
    return loss_G


@nnx.jit(static_argnums=4)
def _update_D(X, Z, net_D, net_G, loss, trainer_D):
    with _statistics_kept(net_G):
        fake_X = jax.lax.stop_gradient(net_G(Z))
    return _step_D(X, fake_X, net_D, loss, trainer_D)


@nnx.jit(static_argnums=3)
def _update_G(Z, net_D, net_G, loss, trainer_G):
    return _step_G(*_generated(Z, net_G), net_D, net_G, loss, trainer_G)


@nnx.jit(static_argnums=4)
def _update_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G):
    fake_X, pullback, statistics = _generated(Z, net_G)
    loss_D = _step_D(X, jax.lax.stop_gradient(fake_X), net_D, loss, trainer_D)
    return loss_D, _step_G(fake_X, pullback, statistics, net_D, net_G, loss, trainer_G)


def update_D(X, Z, net_D, net_G, loss, trainer_D):
    """One step on the discriminator; returns its loss as a float.

    D maximizes log D(x) + log(1 - D(G(z))): ``loss`` (binary cross-entropy
    on logits, summed) with label 1 for the real batch X and 0 for the fakes
    G(Z); the returned value is the mean of the two sums. The fakes carry no
    gradient, and G's BN statistics stay as they were.
    """
    return float(_update_D(X, Z, net_D, net_G, loss, trainer_D))


def update_G(Z, net_D, net_G, loss, trainer_G):
    """One step on the generator; returns its loss as a float.

    G maximizes log D(G(z)) (its fakes scored against label 1), which does
    not saturate while D wins. Only G's parameter gradients are computed,
    and D's BN statistics stay as they were.
    """
    return float(_update_G(Z, net_D, net_G, loss, trainer_G))


def step_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G):
    """``update_D_then_G`` without waiting for the result: (loss_D, loss_G) as arrays."""
    return _update_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G)


def update_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G):
    """``update_D(X, Z, ...)`` then ``update_G(Z, ...)`` in one pass over G.

    Returns (loss_D, loss_G) as floats, the same values and updates as the two
    calls: G runs forward once, D's step reads the fakes without gradient, and
    G's step pulls the gradient through the updated D back into that pass.
    """
    loss_D, loss_G = step_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G)
    return float(loss_D), float(loss_G)


class _Batches:
    """Arrays in batches of tuples, reshuffled by NumPy on every pass if ``shuffle``."""

    def __init__(self, arrays, batch_size, shuffle, transforms):
        self.arrays, self.batch_size, self.shuffle = arrays, batch_size, shuffle
        self.transforms = transforms

    def __iter__(self):
        count = len(self.arrays[0])
        order = np.random.permutation(count) if self.shuffle else np.arange(count)
        for start in range(0, count, self.batch_size):
            part = order[start:start + self.batch_size]
            yield tuple(transform(array[part])
                        for transform, array in zip(self.transforms, self.arrays))

    def __len__(self):
        return -(-len(self.arrays[0]) // self.batch_size)


def load_array(data_arrays, batch_size, is_train=True):
    """Batches of tuples from ``data_arrays`` (arrays of equal length), shuffled
    by NumPy, which ``set_seed`` seeds, on every pass when ``is_train``."""
    arrays = tuple(np.asarray(array) for array in data_arrays)
    return _Batches(arrays, batch_size, is_train, (jnp.asarray,) * len(arrays))


def _uint8_batch_to_float(X):
    return jnp.asarray(X, dtype=jnp.float32)[..., None] / 255


def load_data_fashion_mnist(batch_size, resize=None):
    """Fashion-MNIST as (train_iter, test_iter) of (X, y) batches.

    X is float32 in [0, 1] of shape (N, 28, 28, 1), or (N, resize, resize, 1);
    y holds int32 labels 0-9. The training set is reshuffled (by NumPy) on
    every pass. The archives come through the data hub.
    """
    def batches(split, shuffle):
        images, labels = fashion_mnist.load_fashion_mnist_arrays(split, resize)
        return _Batches((images, labels.astype(np.int32)), batch_size, shuffle,
                        (_uint8_batch_to_float, jnp.asarray))
    return batches("train", True), batches("test", False)


@nnx.jit
def _generate_kept(net_G, Z):
    with _statistics_kept(net_G):
        return net_G(Z)


def sample_images(net_G, num_images, latent_dim):
    """``num_images`` generated images as uint8 (N, 64, 64, 3), for viewing or
    for ``sliced_wasserstein_distance``. G runs in training mode, as during
    training, with latents from NumPy's generator; its BN statistics stay."""
    device = next(iter(jax.tree.leaves(nnx.state(net_G))[0].devices()))
    Z = jax.device_put(np.random.standard_normal((num_images, 1, 1, latent_dim))
                       .astype(np.float32), device)
    return swd.images_from_tanh(numpy(_generate_kept(net_G, Z)), channels_first=False)


class TrainingRun(training.TrainingRun):
    __doc__ = training.TrainingRun.__doc__
    _framework = sys.modules[__name__]
