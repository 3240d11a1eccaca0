"""PyTorch side of the shim: the per-framework names of ``d2l_shim.api``.

Images are NCHW: real batches X are (N, 3, 64, 64), latents Z are
(N, latent_dim, 1, 1) and the discriminator returns logits (N, 1, 1, 1).
"""
import contextlib
import random

import numpy as np
import torch

from . import fashion_mnist, plotting, swd
from ._exports import *  # noqa: F401,F403  (the framework-free names)
from .api import PUBLIC_NAMES

__all__ = list(PUBLIC_NAMES)


def num_gpus():
    """The number of CUDA devices visible to PyTorch."""
    return torch.cuda.device_count()


def try_gpu(i=0):
    """GPU ``i`` if it exists, else the CPU."""
    return torch.device(f"cuda:{i}") if num_gpus() > i else torch.device("cpu")


def numpy(x):
    """A NumPy copy of a tensor (any device, grad or not); arrays pass through."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
    """Plot a grid of images (N, H, W, C) given as a tensor or an array."""
    return plotting.show_images(numpy(imgs), num_rows, num_cols, titles, scale)


def count_parameters(net):
    """The number of trainable scalars in ``net``."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def set_seed(seed):
    """Seed Python, NumPy and PyTorch (CPU and CUDA) for a repeatable run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def _statistics_kept(net):
    """Run a forward pass of ``net`` in training mode without letting it move
    its BatchNorm running statistics (its buffers), which are restored bitwise.

    Each network's statistics should follow its own step only: G's are not
    touched by D's update, D's not by G's. Training itself never reads them
    (BN normalizes with batch statistics in training mode).
    """
    saved = [buffer.clone() for buffer in net.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(net.buffers(), saved):
                buffer.copy_(value)


def update_D(X, Z, net_D, net_G, loss, trainer_D):
    """One step on the discriminator; returns its loss as a float.

    D maximizes log D(x) + log(1 - D(G(z))): binary cross-entropy with label 1
    for the real batch X and 0 for the fakes G(Z) (for the DCGAN, X is
    (N, 3, 64, 64) and Z (N, latent_dim, 1, 1)). ``loss`` is ``BCEWithLogitsLoss(reduction='sum')``;
    the returned value is the mean of the real and fake sums. The fakes are
    made without a graph (detached: no gradient reaches G and no memory goes
    to G's activations) and without moving G's BN statistics.
    """
    with torch.no_grad(), _statistics_kept(net_G):
        fake_X = net_G(Z)
    trainer_D.zero_grad()
    real_Y, fake_Y = net_D(X), net_D(fake_X)
    loss_D = (loss(real_Y, torch.ones_like(real_Y))
              + loss(fake_Y, torch.zeros_like(fake_Y))) / 2
    loss_D.backward()
    trainer_D.step()
    return loss_D.item()


def update_G(Z, net_D, net_G, loss, trainer_G):
    """One step on the generator; returns its loss as a float.

    Instead of minimizing log(1 - D(G(z))), which saturates while D wins, G
    maximizes log D(G(z)): the fakes are scored against label 1. The gradient
    flows back through D to G, but only G's parameter gradients are computed
    (D's would be thrown away: this saves a third of D's backward pass), and
    D's BN statistics stay as they were.
    """
    params = [p for p in net_G.parameters() if p.requires_grad]
    # The statistics are restored only after the backward pass, which checks
    # that the tensors its forward pass saw were not modified in between.
    with _statistics_kept(net_D):
        fake_Y = net_D(net_G(Z))
        loss_G = loss(fake_Y, torch.ones_like(fake_Y))
        grads = torch.autograd.grad(loss_G, params)
    for param, grad in zip(params, grads):
        param.grad = grad
    trainer_G.step()
    return loss_G.item()


def load_data_fashion_mnist(batch_size, resize=None):
    """Fashion-MNIST as (train_iter, test_iter), DataLoaders of (X, y).

    X is float32 in [0, 1] of shape (N, 1, 28, 28), or (N, 1, resize, resize);
    y holds int64 labels 0-9 (``get_fashion_mnist_labels`` names them). The
    training set is reshuffled every epoch. The archives come through the data
    hub; see ``d2l_shim.fashion_mnist``.
    """
    def data_loader(split, shuffle):
        images, labels = fashion_mnist.load_fashion_mnist_arrays(split, resize)
        dataset = torch.utils.data.TensorDataset(
            torch.from_numpy(images).unsqueeze(1),  # uint8 until batched: 4x smaller
            torch.from_numpy(labels.astype(np.int64)))
        return torch.utils.data.DataLoader(dataset, batch_size, shuffle=shuffle,
                                           collate_fn=_uint8_batch_to_float)
    return data_loader("train", True), data_loader("test", False)


def _uint8_batch_to_float(samples):
    X, y = torch.utils.data.default_collate(samples)
    return X.float() / 255, y


def sample_images(net_G, num_images, latent_dim):
    """``num_images`` generated images as uint8 (N, 64, 64, 3), for viewing or
    for ``sliced_wasserstein_distance``. G runs in training mode, as during
    training (BN on batch statistics), on the device its weights live on."""
    device = next(net_G.parameters()).device
    with torch.no_grad(), _statistics_kept(net_G):
        fake = net_G(torch.randn(num_images, latent_dim, 1, 1, device=device))
    return swd.images_from_tanh(numpy(fake), channels_first=True)
