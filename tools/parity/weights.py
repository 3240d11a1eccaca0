"""The framework-neutral weight file of the DCGAN chapter's two networks.

One NumPy ``.npz`` file (``numpy.savez``) of float32 arrays, one per tensor,
in **PyTorch's names and layouts**:

=============================  ===========================  ======================
key                            shape                        what
=============================  ===========================  ======================
``G.<i>.conv.weight``          (in, out, kh, kw)            transposed convolution
``D.<i>.conv.weight``          (out, in, kh, kw)            convolution
``<net>.<i>.bn.gamma``         (channels,)                  BatchNorm scale
``<net>.<i>.bn.beta``          (channels,)                  BatchNorm shift
``<net>.<i>.bn.running_mean``  (channels,)                  BatchNorm statistic
``<net>.<i>.bn.running_var``   (channels,)                  BatchNorm statistic
=============================  ===========================  ======================

``<net>`` is ``G`` (generator) or ``D`` (discriminator); ``<i>`` counts the
layers that hold weights, in the chapter's order: 0-3 are the four blocks (a
convolution and its BatchNorm), 4 the last convolution, which has no BatchNorm.
(Activations hold no weights, so PyTorch's trailing ``nn.Tanh`` has no index.)

Kernels are cross-correlation kernels, never flipped, as all three frameworks
store them:

* convolution: ``out[n, o, y, x] = sum_{i,u,v} w[o, i, u, v] *
  in[n, i, s*y - p + u, s*x - p + v]``;
* transposed convolution (the gradient of that convolution with respect to
  its input): ``out[n, o, s*y - p + u, s*x - p + v] += w[i, o, u, v] *
  in[n, i, y, x]``.

Activations exchanged with the weights (``Z``, ``X``, images) are NCHW.
The running statistics are PyTorch's and MXNet's ``running_mean`` and
``running_var`` (Keras: ``moving_mean``, ``moving_variance``); PyTorch's
``num_batches_tracked`` is not carried (it matters only with ``momentum=None``).

This module imports NumPy only: it runs in every environment.
"""
from dataclasses import dataclass

import numpy as np

#: The chapter's sizes: latent vectors of 100 numbers, n_G = n_D = 64.
LATENT_DIM, N_G, N_D, IMAGE_CHANNELS = 100, 64, 64, 3
KERNEL_SIZE = 4
#: BatchNorm tensors, in file order; the first two are trained, the last two are
#: statistics (their defaults: mean 0, variance 1).
BN_PARTS = ("gamma", "beta", "running_mean", "running_var")
BN_TRAINABLE = ("gamma", "beta")
INIT_STD = 0.02  # every tensor, BN scales and shifts too: any shared weights will do


@dataclass(frozen=True)
class Layer:
    """One weight-holding layer: a (transposed) convolution, maybe with a BatchNorm."""
    net: str              # "G" or "D"
    index: int            # position among the net's weight-holding layers
    transposed: bool      # ConvTranspose2d (G) rather than Conv2d (D)
    in_channels: int
    out_channels: int
    batch_norm: bool

    @property
    def prefix(self):
        return f"{self.net}.{self.index}"

    @property
    def kernel_name(self):
        return f"{self.prefix}.conv.weight"

    @property
    def kernel_shape(self):
        """(in, out, k, k) if transposed, else (out, in, k, k): PyTorch's layouts."""
        first, second = ((self.in_channels, self.out_channels) if self.transposed
                         else (self.out_channels, self.in_channels))
        return (first, second, KERNEL_SIZE, KERNEL_SIZE)

    def bn_name(self, part):
        return f"{self.prefix}.bn.{part}"


def dcgan_layers(latent_dim=LATENT_DIM, n_G=N_G, n_D=N_D):
    """The chapter's net_G then net_D, as a list of ``Layer``."""
    g_channels = [latent_dim, n_G * 8, n_G * 4, n_G * 2, n_G, IMAGE_CHANNELS]
    d_channels = [IMAGE_CHANNELS, n_D, n_D * 2, n_D * 4, n_D * 8, 1]
    layers = []
    for net, channels, transposed in (("G", g_channels, True), ("D", d_channels, False)):
        for index in range(5):
            layers.append(Layer(net, index, transposed, channels[index],
                                channels[index + 1], batch_norm=index < 4))
    return layers


def bind_layers(net_name, found, is_transposed):
    """Pair a network's weight layers with the file's layers of ``net_name``.

    ``found`` is [(conv, bn or None)] in the network's order, as a framework
    module reads it from the chapter's Sequential; ``is_transposed(conv)`` tells
    a transposed convolution. Returns [(Layer, conv, bn)]; raises ValueError
    if the count, a convolution's kind or the presence of a BatchNorm differs.
    """
    layouts = [layer for layer in dcgan_layers() if layer.net == net_name]
    if len(found) != len(layouts):
        raise ValueError(f"net_{net_name} has {len(found)} weight layers, the file {len(layouts)}")
    for layout, (conv, bn) in zip(layouts, found, strict=True):
        if is_transposed(conv) != layout.transposed or (bn is not None) != layout.batch_norm:
            raise ValueError(f"{layout.prefix}: expected transposed={layout.transposed}, "
                             f"batch norm={layout.batch_norm}")
    return [(layout, conv, bn) for layout, (conv, bn) in zip(layouts, found, strict=True)]


def bind_holders(nets, found_layers, is_transposed, kernel_of, bn_part_of, holders_of, what):
    """{file key: the framework object that holds it}, for ``nets`` = {"G": net_G,
    "D": net_D}; the framework modules pass how to read their networks.

    ``found_layers(net)`` is [(conv, bn or None)] (see ``bind_layers``);
    ``kernel_of(conv)`` and ``bn_part_of(bn, part)`` return the holders of a
    kernel and of a BN part ("gamma", "beta", "running_mean", "running_var");
    ``holders_of(net)`` is {name: holder} of everything the network holds. Raises
    ValueError if the structure differs from the file's or if the network holds
    ``what`` (e.g. "parameters") that the file does not carry.
    """
    bound = {}
    for name, net in nets.items():
        for layout, conv, bn in bind_layers(name, found_layers(net), is_transposed):
            bound[layout.kernel_name] = kernel_of(conv)
            for part in BN_PARTS if layout.batch_norm else ():
                bound[layout.bn_name(part)] = bn_part_of(bn, part)
        covered = {id(holder) for holder in bound.values()}
        left_over = [key for key, holder in holders_of(net).items() if id(holder) not in covered]
        if left_over:
            raise ValueError(f"net_{name} holds {what} the file does not carry: {left_over}")
    return bound


def tensor_shapes(layers):
    """Every key of the weight file and its shape, in file order."""
    shapes = {}
    for layer in layers:
        shapes[layer.kernel_name] = layer.kernel_shape
        if layer.batch_norm:
            for part in BN_PARTS:
                shapes[layer.bn_name(part)] = (layer.out_channels,)
    return shapes


def trainable_names(layers):
    """The keys an optimizer updates: kernels, BN scales and shifts."""
    names = []
    for layer in layers:
        names.append(layer.kernel_name)
        if layer.batch_norm:
            names.extend(layer.bn_name(part) for part in BN_TRAINABLE)
    return names


def statistic_names(layers):
    """The BN running statistics' keys (moved by training-mode forward passes)."""
    return [layer.bn_name(part) for layer in layers if layer.batch_norm
            for part in BN_PARTS if part not in BN_TRAINABLE]


def initial_weights(seed, layers):
    """Shared starting weights for the same-weights comparison, from ``seed``.

    Kernels and BN scales/shifts ~ N(0, 0.02) (the chapter starts the scales at
    1; random scales exercise more of each layer); running mean 0, variance 1.
    Returns {key: float32 array} in the shapes of ``tensor_shapes``.
    """
    rng = np.random.default_rng(seed)
    trainable = set(trainable_names(layers))
    weights = {}
    for name, shape in tensor_shapes(layers).items():
        if name in trainable:
            weights[name] = rng.normal(0, INIT_STD, size=shape).astype(np.float32)
        elif name.endswith("running_mean"):
            weights[name] = np.zeros(shape, np.float32)
        else:
            weights[name] = np.ones(shape, np.float32)
    return weights


def check_complete(weights, layers):
    """Raise ValueError unless ``weights`` has exactly the keys and shapes of ``layers``."""
    expected = tensor_shapes(layers)
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = sorted(f"{name} {tuple(weights[name].shape)} != {shape}"
                   for name, shape in expected.items()
                   if name in weights and tuple(weights[name].shape) != shape)
    if missing or unexpected or wrong:
        raise ValueError(f"weights do not match the layout: missing {missing}, "
                         f"unexpected {unexpected}, wrong shapes {wrong}")


def save_arrays(path, arrays):
    """Write {key: array} as an uncompressed ``.npz`` (fast; the file is temporary)."""
    np.savez(path, **arrays)


def load_arrays(path):
    """Read an ``.npz`` back as a plain {key: array} dict."""
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def weight_layers(layers, conv_types):
    """The layers of a chapter Sequential that hold weights: [(conv, bn or None)].

    ``layers`` iterates over the Sequential's layers; ``conv_types`` are the
    framework's convolution classes (for the last layer of G and of D). The
    chapter's G_block and D_block are recognised by their ``batch_norm``.
    """
    found = []
    for layer in layers:
        if hasattr(layer, "batch_norm"):
            conv = layer.conv2d_trans if hasattr(layer, "conv2d_trans") else layer.conv2d
            found.append((conv, layer.batch_norm))
        elif isinstance(layer, conv_types):
            found.append((layer, None))
    return found


# Keras and Flax (channels last) store Conv kernels as (kh, kw, in, out) and
# transposed ones as (kh, kw, out, in): one permutation of the file's axes
# serves both, and nothing is flipped.
TO_CHANNELS_LAST_KERNEL = (2, 3, 1, 0)
FROM_CHANNELS_LAST_KERNEL = (3, 2, 0, 1)  # the inverse permutation
TO_CHANNELS_LAST = (0, 2, 3, 1)   # images NCHW -> NHWC
TO_CHANNELS_FIRST = (0, 3, 1, 2)  # and back


def to_channels_last(key, array):
    """A file array in the channels-last layout: kernels permuted, vectors unchanged."""
    return array.transpose(TO_CHANNELS_LAST_KERNEL) if key.endswith("conv.weight") else array


def from_channels_last(key, array):
    """A channels-last array in the file's layout (inverse of ``to_channels_last``)."""
    return array.transpose(FROM_CHANNELS_LAST_KERNEL) if key.endswith("conv.weight") else array


def channels_last_values(holders, file_weights):
    """(holder, value) per file key: the file's array in the channels-last
    layout, checked against the shape of the variable that will hold it."""
    for key, holder in holders.items():
        value = to_channels_last(key, file_weights[key])
        if tuple(holder.shape) != value.shape:
            raise ValueError(f"{key}: file {file_weights[key].shape} -> {value.shape}, "
                             f"net {tuple(holder.shape)}")
        yield holder, value
