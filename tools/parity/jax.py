"""The JAX tab's networks <-> the neutral weight file (see ``weights.py``).

Flax's layouts are Keras' ones: ``nnx.Conv`` kernels are (kh, kw, in, out) and
the transposed convolutions (``transpose_kernel=True``, the gradient of the
convolution with the same kernel, as in PyTorch) are (kh, kw, out, in), so one
permutation serves both, file axes (0, 1, 2, 3) -> Flax axes (2, 3, 1, 0), and
nothing is flipped. Images are NHWC. ``nnx.BatchNorm`` names its parts scale,
bias, mean and var. Imports JAX only (run it in envs/jax).
"""
import jax
import numpy as np
import optax
from flax import nnx

from tools.chapter_code import NETWORK_NAMES, chapter_namespace
from tools.parity import weights
from tools.parity.weights import (
    TO_CHANNELS_FIRST,
    TO_CHANNELS_LAST,
    channels_last_values,
    from_channels_last,
)

FRAMEWORK = "jax"
BN_ATTRIBUTES = {"gamma": "scale", "beta": "bias", "running_mean": "mean", "running_var": "var"}


def load_chapter(dtype="float32"):
    """(net_G, net_D, d2l): the chapter's own networks with every variable cast
    to ``dtype`` (float64 needs JAX's x64 mode, switched on here), and the shim."""
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    chapter = chapter_namespace(FRAMEWORK, "dcgan", NETWORK_NAMES)
    net_G, net_D = chapter["net_G"], chapter["net_D"]
    for net in (net_G, net_D):
        nnx.update(net, jax.tree.map(lambda value: value.astype(dtype), nnx.state(net)))
    return net_G, net_D, chapter["d2l"]


def weight_layers(net):
    """The layers of a chapter Sequential that hold weights: [(conv, bn or None)]."""
    return weights.weight_layers(net.layers, (nnx.Conv, nnx.ConvTranspose))


def is_transposed(conv):
    return isinstance(conv, nnx.ConvTranspose)


def neutral_variables(net_G, net_D):
    """{file key: the nnx Variable that holds it}; raises if the chapter's
    networks do not have the file's structure, or hold variables it lacks."""
    return weights.bind_holders(
        {"G": net_G, "D": net_D}, weight_layers, is_transposed,
        kernel_of=lambda conv: conv.kernel,
        bn_part_of=lambda bn, part: getattr(bn, BN_ATTRIBUTES[part]),
        holders_of=lambda net: {"/".join(map(str, path)): node
                                for path, node in nnx.iter_graph(net)
                                if isinstance(node, nnx.Variable)},
        what="variables")


def import_weights(net_G, net_D, weights):
    """Set every variable from the file (shapes must match exactly)."""
    for variable, value in channels_last_values(neutral_variables(net_G, net_D), weights):
        variable[...] = value.astype(variable.dtype)


def export_weights(net_G, net_D):
    """The networks' variables as {file key: array in the networks' dtype}."""
    return {key: np.ascontiguousarray(from_channels_last(key, np.asarray(variable[...])))
            for key, variable in neutral_variables(net_G, net_D).items()}


def forward(net_G, net_D, Z, X):
    """G(Z) (N, 3, 64, 64), D(X) and D(G(Z)) (N, 1, 1, 1) in training mode (BN on
    batch statistics, as the chapter trains); Z (N, 100, 1, 1), X (N, 3, 64, 64),
    both in the networks' dtype."""
    fake = net_G(Z.transpose(TO_CHANNELS_LAST))
    real_Y, fake_Y = net_D(X.transpose(TO_CHANNELS_LAST)), net_D(fake)
    return {"G_of_Z": np.asarray(fake).transpose(TO_CHANNELS_FIRST),
            "D_of_X": np.asarray(real_Y).transpose(TO_CHANNELS_FIRST),
            "D_of_G_of_Z": np.asarray(fake_Y).transpose(TO_CHANNELS_FIRST)}


def update_D_once(net_G, net_D, d2l, Z, X):
    """One ``d2l.update_D`` with plain SGD at learning rate 1, so each weight of
    D moves by exactly minus its gradient; returns the loss (the chapter's)."""
    trainer_D = nnx.Optimizer(net_D, optax.sgd(1.0), wrt=nnx.Param)
    return d2l.update_D(X.transpose(TO_CHANNELS_LAST), Z.transpose(TO_CHANNELS_LAST),
                        net_D, net_G, chapter_loss, trainer_D)


def update_G_once(net_G, net_D, d2l, Z):
    """One ``d2l.update_G`` with plain SGD at learning rate 1; returns the loss."""
    trainer_G = nnx.Optimizer(net_G, optax.sgd(1.0), wrt=nnx.Param)
    return d2l.update_G(Z.transpose(TO_CHANNELS_LAST), net_D, net_G, chapter_loss, trainer_G)


def chapter_loss(logits, labels):
    """The loss the chapter's ``train`` hands to the updates."""
    return optax.sigmoid_binary_cross_entropy(logits, labels).sum()
