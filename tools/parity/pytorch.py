"""The PyTorch tab's networks <-> the neutral weight file (see ``weights.py``).

The file uses PyTorch's layouts, so nothing is transposed or flipped: Conv2d
kernels are (out, in, kh, kw), ConvTranspose2d kernels (in, out, kh, kw), and
BatchNorm2d's ``weight``/``bias`` are the file's ``gamma``/``beta``. Images are
NCHW, as in the file. Imports PyTorch only (run it in envs/pytorch).

A difference the parity test leaves aside, since training never reads the
running statistics: PyTorch averages the unbiased batch variance (times
n/(n-1), n = N*H*W per channel) into ``running_var``, MXNet and Keras the
biased one.
"""
import numpy as np
import torch
from torch import nn

from tools.chapter_code import NETWORK_NAMES, chapter_namespace
from tools.parity import weights

FRAMEWORK = "pytorch"
BN_ATTRIBUTES = {"gamma": "weight", "beta": "bias",
                 "running_mean": "running_mean", "running_var": "running_var"}


def load_chapter(dtype="float32"):
    """(net_G, net_D, d2l): the chapter's own networks, in ``dtype``, and the
    shim the chapter imports."""
    chapter = chapter_namespace(FRAMEWORK, "dcgan", NETWORK_NAMES)
    net_G, net_D = chapter["net_G"], chapter["net_D"]
    for net in (net_G, net_D):
        net.to(getattr(torch, dtype))
    return net_G, net_D, chapter["d2l"]


def weight_layers(net):
    """The layers of a chapter Sequential that hold weights: [(conv, bn or None)]."""
    return weights.weight_layers(net, (nn.Conv2d, nn.ConvTranspose2d))


def is_transposed(conv):
    return isinstance(conv, nn.ConvTranspose2d)


def neutral_tensors(net_G, net_D):
    """{file key: the parameter or buffer that holds it}; raises if the chapter's
    networks do not have the file's structure, or hold tensors it lacks."""
    return weights.bind_holders(
        {"G": net_G, "D": net_D}, weight_layers, is_transposed,
        kernel_of=lambda conv: conv.weight,
        bn_part_of=lambda bn, part: getattr(bn, BN_ATTRIBUTES[part]),
        holders_of=lambda net: {key: tensor for key, tensor
                                in net.state_dict(keep_vars=True).items()
                                if not key.endswith("num_batches_tracked")},
        what="tensors")


def import_weights(net_G, net_D, weights):
    """Copy the file's arrays into the networks (shapes must match exactly:
    ``copy_`` alone would broadcast a wrong shape silently)."""
    with torch.no_grad():
        for key, tensor in neutral_tensors(net_G, net_D).items():
            if tuple(tensor.shape) != weights[key].shape:
                raise ValueError(f"{key}: file {weights[key].shape}, net {tuple(tensor.shape)}")
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(weights[key])))  # casts


def export_weights(net_G, net_D):
    """The networks' tensors as {file key: array in the networks' dtype}."""
    return {key: tensor.detach().cpu().numpy().copy()
            for key, tensor in neutral_tensors(net_G, net_D).items()}


def forward(net_G, net_D, Z, X):
    """G(Z) (N, 3, 64, 64), D(X) and D(G(Z)) (N, 1, 1, 1) in training mode (BN on
    batch statistics, as the chapter trains); Z (N, 100, 1, 1), X (N, 3, 64, 64),
    both in the networks' dtype."""
    net_G.train()
    net_D.train()
    with torch.no_grad():
        fake = net_G(torch.from_numpy(Z))
        return {"G_of_Z": fake.numpy(), "D_of_X": net_D(torch.from_numpy(X)).numpy(),
                "D_of_G_of_Z": net_D(fake).numpy()}


def update_D_once(net_G, net_D, d2l, Z, X):
    """One ``d2l.update_D`` with plain SGD at learning rate 1, so each weight of
    D moves by exactly minus its gradient; returns the loss (the chapter's)."""
    trainer_D = torch.optim.SGD(net_D.parameters(), lr=1.0)
    return d2l.update_D(torch.from_numpy(X), torch.from_numpy(Z), net_D, net_G,
                        chapter_loss(), trainer_D)


def update_G_once(net_G, net_D, d2l, Z):
    """One ``d2l.update_G`` with plain SGD at learning rate 1; returns the loss."""
    trainer_G = torch.optim.SGD(net_G.parameters(), lr=1.0)
    return d2l.update_G(torch.from_numpy(Z), net_D, net_G, chapter_loss(), trainer_G)


def chapter_loss():
    """The loss the chapter's ``train`` hands to the updates."""
    return nn.BCEWithLogitsLoss(reduction="sum")
