"""PyTorch side of the shim: the per-framework names of ``d2l_shim.api``.

Images are NCHW: real batches X are (N, 3, 64, 64), latents Z are
(N, latent_dim, 1, 1) and the discriminator returns logits (N, 1, 1, 1).
"""
import contextlib
import functools
import os
import random
import sys

import numpy as np
import torch

from . import checkpoints, fashion_mnist, plotting, swd, training
from ._exports import *  # noqa: F403  (the framework-free names)
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


def set_seed(seed, epoch=None):
    """Seed Python, NumPy and PyTorch (CPU and CUDA) for a repeatable run.

    With an ``epoch``, seed them from ``checkpoints.epoch_seed(seed, epoch)``
    instead. A loop that does so at the start of every epoch makes that epoch's
    draws (the latents, and the DataLoader's shuffle, which draws from PyTorch's
    global generator) depend on (seed, epoch) alone, so a run resumed from a
    checkpoint repeats the epochs an uninterrupted run would have made.
    """
    if epoch is not None:
        seed = checkpoints.epoch_seed(seed, epoch)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_checkpoint(path, net_D, net_G, trainer_D, trainer_G, history, seed):
    """Save both networks, both optimizers and the training history to ``path``.

    One ``.npz`` file, replaced atomically (see ``d2l_shim.checkpoints``): each
    network's ``state_dict`` (weights and BatchNorm running statistics), each
    optimizer's per-parameter state (Adam's moments and step counts), the
    history (``history``: rows of numbers, one per epoch from epoch 0) and
    the run's ``seed``. ``load_checkpoint`` restores it.
    """
    arrays = checkpoints.metadata("pytorch", history, seed)
    for name, net in (("net_D", net_D), ("net_G", net_G)):
        state = {key: numpy(value) for key, value in net.state_dict().items()}
        arrays.update(checkpoints.with_prefix(name, state))
    for name, trainer in (("trainer_D", trainer_D), ("trainer_G", trainer_G)):
        arrays.update(checkpoints.with_prefix(name, _optimizer_arrays(trainer)))
    checkpoints.write_arrays_atomically(path, arrays)


def load_checkpoint(path, net_D, net_G, trainer_D, trainer_G, data_iter, seed):
    """Restore what ``save_checkpoint`` wrote to ``path``; return the history.

    Returns the stored history (one row per epoch from epoch 0, the untrained
    networks; see ``d2l_shim.training``), or ``[]`` if ``path``
    does not exist yet (a fresh run). Weights, BatchNorm statistics and the
    optimizers' state come back bitwise; the optimizers keep their own
    hyperparameters (``param_groups``: learning rate, betas). ``data_iter`` is
    not needed: a DataLoader draws each epoch's shuffle from PyTorch's global
    generator, which ``set_seed(seed, epoch)`` resets. Raises
    ``checkpoints.CheckpointError``, before changing anything, for a corrupt
    file and for one written by another framework, for another model or with
    another seed.
    """
    if not os.path.exists(path):
        return []
    nets = {"net_D": net_D, "net_G": net_G}
    trainers = {"trainer_D": trainer_D, "trainer_G": trainer_G}
    expected = {name: {key: tuple(value.shape) for key, value in net.state_dict().items()}
                for name, net in nets.items()}
    expected.update({name: functools.partial(_optimizer_shapes, trainer)
                     for name, trainer in trainers.items()})
    history, parts = checkpoints.read_checked(path, "pytorch", seed, expected)
    for name, net in nets.items():
        net.load_state_dict({key: torch.from_numpy(value) for key, value in parts[name].items()})
    for name, trainer in trainers.items():
        _load_optimizer_arrays(trainer, parts[name])
    return history


def _optimizer_arrays(optimizer):
    """An optimizer's per-parameter state as arrays named '<parameter index>/<key>'."""
    return {f"{index}/{key}": numpy(value)
            for index, state in optimizer.state_dict()["state"].items()
            for key, value in state.items()}


def _optimizer_parameters(optimizer):
    """The optimizer's parameters in the order its state_dict numbers them."""
    return [param for group in optimizer.param_groups for param in group["params"]]


def _optimizer_shapes(optimizer, found):
    """The shape each array in ``found`` must have for this optimizer: its
    parameter's (moments) or () (step counts); an unknown index is left out,
    so that its arrays are reported as unexpected."""
    params = _optimizer_parameters(optimizer)
    expected = {}
    for name, value in found.items():
        index = name.split("/", 1)[0]
        if index.isdigit() and int(index) < len(params):
            shape = tuple(params[int(index)].shape)
            expected[name] = () if np.ndim(value) == 0 else shape
    return expected


def _load_optimizer_arrays(optimizer, arrays):
    params = _optimizer_parameters(optimizer)
    state = {}
    for name, value in arrays.items():
        index, key = name.split("/", 1)
        param, tensor = params[int(index)], torch.from_numpy(value)
        if tensor.dim():  # moments: on the parameter's device, in its memory layout
            tensor = torch.empty_like(param).copy_(tensor)
        state.setdefault(int(index), {})[key] = tensor
    param_groups = optimizer.state_dict()["param_groups"]
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})


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
    (N, 3, 64, 64) and Z (N, latent_dim, 1, 1)). ``loss`` is
    ``BCEWithLogitsLoss(reduction='sum')``; the returned value is the mean
    of the real and fake sums. The fakes are made without a graph (detached:
    no gradient reaches G and no memory goes to G's activations) and without
    moving G's BN statistics.
    """
    with torch.no_grad(), _statistics_kept(net_G):
        fake_X = net_G(Z)
    return float(_step_D(X, fake_X, net_D, loss, trainer_D))


def _step_D(X, fake_X, net_D, loss, trainer_D):
    """D's step on a real batch and a batch of fakes that carry no graph."""
    trainer_D.zero_grad()
    real_Y, fake_Y = net_D(X), net_D(fake_X)
    loss_D = (loss(real_Y, torch.ones_like(real_Y))
              + loss(fake_Y, torch.zeros_like(fake_Y))) / 2
    loss_D.backward()
    trainer_D.step()
    return loss_D.detach()


def update_G(Z, net_D, net_G, loss, trainer_G):
    """One step on the generator; returns its loss as a float.

    Instead of minimizing log(1 - D(G(z))), which saturates while D wins, G
    maximizes log D(G(z)): the fakes are scored against label 1. The gradient
    flows back through D to G, but only G's parameter gradients are computed
    (D's would be thrown away: this saves a third of D's backward pass), and
    D's BN statistics stay as they were.
    """
    return float(_step_G(net_G(Z), net_D, net_G, loss, trainer_G))


def _step_G(fake_X, net_D, net_G, loss, trainer_G):
    """G's step on fakes that still carry the graph of ``net_G``'s pass."""
    params = [p for p in net_G.parameters() if p.requires_grad]
    # The statistics are restored only after the backward pass, which checks
    # that the tensors its forward pass saw were not modified in between.
    with _statistics_kept(net_D):
        fake_Y = net_D(fake_X)
        loss_G = loss(fake_Y, torch.ones_like(fake_Y))
        grads = torch.autograd.grad(loss_G, params)
    for param, grad in zip(params, grads):
        param.grad = grad
    trainer_G.step()
    return loss_G.detach()


def step_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G):
    """``update_D_then_G`` without waiting for the result: (loss_D, loss_G) as tensors."""
    fake_X = net_G(Z)
    loss_D = _step_D(X, fake_X.detach(), net_D, loss, trainer_D)
    return loss_D, _step_G(fake_X, net_D, net_G, loss, trainer_G)


def update_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G):
    """``update_D(X, Z, ...)`` then ``update_G(Z, ...)`` in one pass over G.

    Returns (loss_D, loss_G) as floats, the same values and the same updates
    as the two calls: G's weights do not change in D's step, so the fakes
    update_G would make again equal those update_D made. Here G runs forward
    once (with a graph, which D's step ignores by detaching) and G's step
    back-propagates through D, as updated by D's step, into that graph. G's
    BN statistics move once, as in update_G; D's stay as its own step left them.
    """
    loss_D, loss_G = step_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G)
    return float(loss_D), float(loss_G)


def load_array(data_arrays, batch_size, is_train=True):
    """A DataLoader of tuples of batches from ``data_arrays`` (tensors or arrays
    of equal length), reshuffled every epoch when ``is_train``."""
    dataset = torch.utils.data.TensorDataset(*map(torch.as_tensor, data_arrays))
    return torch.utils.data.DataLoader(dataset, batch_size, shuffle=is_train)


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


class TrainingRun(training.TrainingRun):
    __doc__ = training.TrainingRun.__doc__
    _framework = sys.modules[__name__]
