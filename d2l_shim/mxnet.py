"""MXNet (Gluon, NumPy interface) side of the shim: the names of ``d2l_shim.api``.

Images are NCHW: real batches X are (N, 3, 64, 64), latents Z are
(N, latent_dim, 1, 1) and the discriminator returns logits (N, 1, 1, 1).
"""
import contextlib
import random

import mxnet as mx
import numpy as onp
from mxnet import autograd, gluon, np, npx
from mxnet.gluon.parameter import DeferredInitializationError

from . import fashion_mnist, plotting, swd
from ._exports import *  # noqa: F401,F403  (the framework-free names)
from .api import PUBLIC_NAMES

npx.set_np()

__all__ = list(PUBLIC_NAMES)


def num_gpus():
    """The number of GPUs visible to MXNet."""
    return mx.context.num_gpus()


def try_gpu(i=0):
    """GPU ``i`` if it exists, else the CPU."""
    return mx.gpu(i) if num_gpus() > i else mx.cpu()


def numpy(x):
    """A (classic) NumPy copy of an MXNet array; other arrays pass through."""
    if hasattr(x, "asnumpy"):
        return x.asnumpy()
    return onp.asarray(x)


def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
    """Plot a grid of images (N, H, W, C) given as an MXNet or NumPy array."""
    return plotting.show_images(numpy(imgs), num_rows, num_cols, titles, scale)


def count_parameters(net):
    """The number of trainable scalars in an initialized ``net``."""
    return sum(p.data().size for p in net.collect_params().values()
               if p.grad_req != "null")


def set_seed(seed):
    """Seed Python, NumPy and MXNet for a repeatable run."""
    random.seed(seed)
    onp.random.seed(seed)
    mx.random.seed(seed)


@contextlib.contextmanager
def _statistics_kept(net):
    """Run a forward pass of ``net`` in training mode without letting it move
    its BatchNorm running statistics, which are restored bitwise.

    Each network's statistics should follow its own step only: G's are not
    touched by D's update, D's not by G's. Training itself never reads them
    (BN normalizes with batch statistics in training mode).
    """
    stats = [p for p in net.collect_params().values() if p.grad_req == "null"]
    saved = [_value_if_initialized(p) for p in stats]
    try:
        yield
    finally:
        for param, value in zip(stats, saved):
            if value is None:  # allocated by this very pass: back to its initializer
                param.initialize(ctx=param.list_ctx(), force_reinit=True)
            else:
                param.set_data(value)


def _value_if_initialized(param):
    """A copy of a parameter's value, or None while its shape is still unknown
    (Gluon defers allocation until the first forward pass)."""
    try:
        return param.data().copy()
    except DeferredInitializationError:
        return None


def update_D(X, Z, net_D, net_G, loss, trainer_D):
    """One step on the discriminator; returns its loss as a float.

    D maximizes log D(x) + log(1 - D(G(z))): binary cross-entropy with label 1
    for the real batch X and 0 for the fakes G(Z) (for the DCGAN, X is
    (N, 3, 64, 64) and Z (N, latent_dim, 1, 1)). Gluon's ``SigmoidBCELoss`` returns one value per
    example; we sum them, as the other tabs do, and step with ``step(1)`` so
    the update follows the gradient of that sum rather than of the mean. The
    fakes are made in training mode (BN uses batch statistics) but outside
    ``record``, so they are detached: no gradient reaches G. G's BN
    statistics do not move.
    """
    with autograd.train_mode(), _statistics_kept(net_G):
        fake_X = net_G(Z)
    with autograd.record():
        real_Y, fake_Y = net_D(X), net_D(fake_X)
        loss_D = (loss(real_Y, np.ones_like(real_Y)).sum()
                  + loss(fake_Y, np.zeros_like(fake_Y)).sum()) / 2
    loss_D.backward()
    trainer_D.step(1)
    return float(loss_D)


def update_G(Z, net_D, net_G, loss, trainer_G):
    """One step on the generator; returns its loss as a float.

    G maximizes log D(G(z)) (fakes scored against label 1), the form that does
    not saturate while D wins. Only G's trainer steps, and D's BN statistics
    stay as they were.
    """
    with _statistics_kept(net_D):
        with autograd.record():
            fake_Y = net_D(net_G(Z))
            loss_G = loss(fake_Y, np.ones_like(fake_Y)).sum()
        loss_G.backward()
    trainer_G.step(1)
    return float(loss_G)


def load_data_fashion_mnist(batch_size, resize=None):
    """Fashion-MNIST as (train_iter, test_iter), DataLoaders of (X, y).

    X is float32 in [0, 1] of shape (N, 1, 28, 28), or (N, 1, resize, resize);
    y holds int32 labels 0-9 (``get_fashion_mnist_labels`` names them). The
    training set is reshuffled every epoch. The archives come through the data
    hub; see ``d2l_shim.fashion_mnist``.
    """
    def data_loader(split, shuffle):
        images, labels = fashion_mnist.load_fashion_mnist_arrays(split, resize)
        # uint8 until batched: 4x smaller than float32.
        dataset = gluon.data.ArrayDataset(images[:, None], labels.astype(onp.int32))
        return gluon.data.DataLoader(dataset, batch_size, shuffle=shuffle,
                                     batchify_fn=_uint8_batch_to_float)
    return data_loader("train", True), data_loader("test", False)


def _uint8_batch_to_float(samples):
    X, y = (onp.stack(column) for column in zip(*samples))
    return np.array(X, dtype="float32") / 255, np.array(y, dtype="int32")


def sample_images(net_G, num_images, latent_dim):
    """``num_images`` generated images as uint8 (N, 64, 64, 3), for viewing or
    for ``sliced_wasserstein_distance``. G runs in training mode, as during
    training (BN on batch statistics), on the device its weights live on."""
    device = next(iter(net_G.collect_params().values())).list_ctx()[0]
    Z = np.random.normal(0, 1, size=(num_images, latent_dim, 1, 1), ctx=device)
    with autograd.train_mode(), _statistics_kept(net_G):
        fake = net_G(Z)
    return swd.images_from_tanh(numpy(fake), channels_first=True)
