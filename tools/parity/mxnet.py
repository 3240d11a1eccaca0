"""The MXNet tab's networks <-> the neutral weight file (see ``weights.py``).

Gluon stores kernels as the file does: Conv2D (out, in, kh, kw), Conv2DTranspose
(in, out, kh, kw), cross-correlation, no flip; BatchNorm's parameters are named
gamma, beta, running_mean, running_var. Images are NCHW. So nothing is
converted. Imports MXNet only (run it in envs/mxnet).

Two differences the parity test leaves aside, since training never reads the
running statistics: MXNet 1.9 moves them in the *backward* pass (a forward
pass in training mode alone leaves them), once per recorded forward pass and
in reverse order, so after ``update_D`` (D on the real batch, then on the
fakes) D's running mean weighs the two batches 0.1/0.09 where PyTorch and
Keras weigh them 0.09/0.1. And in float64 the leaky ReLU's slope is still the
float32 0.2f.
"""
from mxnet import autograd, gluon, np
from mxnet.gluon import nn

from tools.chapter_code import NETWORK_NAMES, chapter_namespace
from tools.parity import weights
from tools.parity.weights import IMAGE_CHANNELS, LATENT_DIM

FRAMEWORK = "mxnet"


def load_chapter(dtype="float32"):
    """(net_G, net_D, d2l): the chapter's own networks, initialized, with their
    shapes inferred (Gluon defers both until the first forward pass) and cast
    to ``dtype``, and the shim the chapter imports."""
    chapter = chapter_namespace(FRAMEWORK, "dcgan", NETWORK_NAMES)
    net_G, net_D = chapter["net_G"], chapter["net_D"]
    for net, shape in ((net_G, (1, LATENT_DIM, 1, 1)), (net_D, (1, IMAGE_CHANNELS, 64, 64))):
        net.initialize()
        net(np.zeros(shape))  # prediction mode: no statistic moves (they are overwritten anyway)
        net.cast(dtype)
    return net_G, net_D, chapter["d2l"]


def weight_layers(net):
    """The layers of a chapter Sequential that hold weights: [(conv, bn or None)]."""
    return weights.weight_layers(net, (nn.Conv2D, nn.Conv2DTranspose))


def is_transposed(conv):
    return isinstance(conv, nn.Conv2DTranspose)


def neutral_parameters(net_G, net_D):
    """{file key: the Gluon Parameter that holds it}; raises if the chapter's
    networks do not have the file's structure, or hold parameters it lacks."""
    return weights.bind_holders(
        {"G": net_G, "D": net_D}, weight_layers, is_transposed,
        kernel_of=lambda conv: conv.weight, bn_part_of=getattr,
        holders_of=lambda net: net.collect_params(), what="parameters")


def import_weights(net_G, net_D, weights):
    """Set every parameter from the file (shapes must match exactly)."""
    for key, param in neutral_parameters(net_G, net_D).items():
        if tuple(param.shape) != weights[key].shape:
            raise ValueError(f"{key}: file {weights[key].shape}, net {tuple(param.shape)}")
        param.set_data(np.array(weights[key], dtype=param.dtype))


def export_weights(net_G, net_D):
    """The networks' parameters as {file key: array in the networks' dtype}."""
    return {key: param.data().asnumpy().copy()
            for key, param in neutral_parameters(net_G, net_D).items()}


def forward(net_G, net_D, Z, X):
    """G(Z) (N, 3, 64, 64), D(X) and D(G(Z)) (N, 1, 1, 1) in training mode (BN on
    batch statistics, as the chapter trains); Z (N, 100, 1, 1), X (N, 3, 64, 64),
    both in the networks' dtype."""
    with autograd.train_mode():
        fake = net_G(np.array(Z, dtype=Z.dtype))
        return {"G_of_Z": fake.asnumpy(), "D_of_X": net_D(np.array(X, dtype=X.dtype)).asnumpy(),
                "D_of_G_of_Z": net_D(fake).asnumpy()}


def unit_sgd(net):
    """Plain SGD at learning rate 1 over ``net``'s parameters. The shim's
    ``step(1)`` leaves the summed loss's gradient unscaled, so each weight moves
    by exactly minus its gradient."""
    return gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 1.0})


def update_D_once(net_G, net_D, d2l, Z, X):
    """One ``d2l.update_D`` with ``unit_sgd``; returns the loss (the chapter's)."""
    return d2l.update_D(np.array(X, dtype=X.dtype), np.array(Z, dtype=Z.dtype), net_D, net_G,
                        chapter_loss(), unit_sgd(net_D))


def update_G_once(net_G, net_D, d2l, Z):
    """One ``d2l.update_G`` with ``unit_sgd``; returns the loss."""
    return d2l.update_G(np.array(Z, dtype=Z.dtype), net_D, net_G, chapter_loss(),
                        unit_sgd(net_G))


def chapter_loss():
    """The loss the chapter's ``train`` hands to the updates: one value per
    example, which the shim sums."""
    return gluon.loss.SigmoidBCELoss()
