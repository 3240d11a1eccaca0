"""MXNet (Gluon, NumPy interface) side of the shim: the names of ``d2l_shim.api``.

Images are NCHW: real batches X are (N, 3, 64, 64), latents Z are
(N, latent_dim, 1, 1) and the discriminator returns logits (N, 1, 1, 1).
"""
import contextlib
import os
import random
import sys
import tempfile

import mxnet as mx
import numpy as onp
from mxnet import autograd, gluon, np, npx
from mxnet.gluon.parameter import DeferredInitializationError

from . import checkpoints, fashion_mnist, plotting, swd, training
from ._exports import *  # noqa: F403  (the framework-free names)
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


def set_seed(seed, epoch=None):
    """Seed Python, NumPy and MXNet for a repeatable run.

    With an ``epoch``, seed them from ``checkpoints.epoch_seed(seed, epoch)``
    instead. MXNet cannot export its generators' state, so a loop that resumes
    from a checkpoint calls this at the start of every epoch: each epoch's
    draws (the latents, and the DataLoader's shuffle, which draws from NumPy's
    global generator) then depend on (seed, epoch) alone.
    """
    if epoch is not None:
        seed = checkpoints.epoch_seed(seed, epoch)
    random.seed(seed)
    onp.random.seed(seed)
    mx.random.seed(seed)


def save_checkpoint(path, net_D, net_G, trainer_D, trainer_G, history, seed):
    """Save both networks, both trainers and the training history to ``path``.

    One ``.npz`` file, replaced atomically (see ``d2l_shim.checkpoints``): every
    parameter of each network, BatchNorm running statistics included, under
    its structural name; each Gluon Trainer's state as written by its
    ``save_states`` (Adam's moments and the optimizer with its update counts),
    stored as bytes, with the structural names of the parameters in the order
    the trainer numbers them; the history (``history``, one row per epoch
    from epoch 0) and the run's ``seed``. ``load_checkpoint`` restores it.
    """
    arrays = checkpoints.metadata("mxnet", history, seed)
    nets = {"net_D": _parameters(net_D, "net_D"), "net_G": _parameters(net_G, "net_G")}
    for name, params in nets.items():
        arrays.update(checkpoints.with_prefix(
            name, {key: param.data().asnumpy() for key, param in params.items()}))
    for name, trainer, params in (("trainer_D", trainer_D, nets["net_D"]),
                                  ("trainer_G", trainer_G, nets["net_G"])):
        arrays[f"{name}/states"] = _trainer_states(trainer)
        arrays[f"{name}/order"] = onp.array(_trainer_order(trainer, params))
    checkpoints.write_arrays_atomically(path, arrays)


def load_checkpoint(path, net_D, net_G, trainer_D, trainer_G, data_iter, seed):
    """Restore what ``save_checkpoint`` wrote to ``path``; return the history.

    Returns the stored history (one row per epoch from epoch 0, the untrained
    networks; see ``d2l_shim.training``), or ``[]`` if ``path``
    does not exist yet (a fresh run). Parameters, BatchNorm statistics and the
    trainers' state come back bitwise. ``Trainer.load_states`` brings back the
    pickled optimizer, hyperparameters included; only the learning rate is set
    back to the trainer's own. (Unpickling runs code: load only checkpoints you
    trust.) ``data_iter`` is not needed: a Gluon DataLoader draws each epoch's
    shuffle from NumPy's global generator, which ``set_seed(seed, epoch)``
    resets. Raises ``checkpoints.CheckpointError`` for a corrupt file and for one
    written by another framework, for another model or with another seed;
    these are found before anything changes.
    """
    if not os.path.exists(path):
        return []
    nets = {"net_D": _parameters(net_D, "net_D"), "net_G": _parameters(net_G, "net_G")}
    trainers = {"trainer_D": (trainer_D, _trainer_order(trainer_D, nets["net_D"])),
                "trainer_G": (trainer_G, _trainer_order(trainer_G, nets["net_G"]))}
    expected = {name: {key: param.shape for key, param in params.items()}
                for name, params in nets.items()}
    expected.update({name: {"states": None, "order": (len(order),)}
                     for name, (_, order) in trainers.items()})
    history, parts = checkpoints.read_checked(path, "mxnet", seed, expected)
    for name, (_, order) in trainers.items():
        if sorted(parts[name]["order"]) != sorted(order):
            checkpoints.check_shapes(dict.fromkeys(order), dict.fromkeys(parts[name]["order"]),
                                     path, f"{name}'s parameter list")
    for name, (trainer, order) in trainers.items():
        _restore_trainer(trainer, parts[name]["states"])
        _renumber(trainer, list(parts[name]["order"]), order)
    for name, params in nets.items():
        for key, value in parts[name].items():
            params[key].set_data(np.array(value, dtype=value.dtype))
    return history


def _parameters(net, what):
    """``net``'s parameters, BatchNorm statistics included, by structural name
    ('0.batch_norm.running_mean', as ``save_parameters`` names them; the keys of
    ``collect_params()`` carry global counters such as 'hybridsequential3_' that
    differ between two instances of one network)."""
    params = net._collect_params_with_prefix()
    for key, param in params.items():
        try:
            param.data()
        except (DeferredInitializationError, RuntimeError) as err:
            raise RuntimeError(
                f"parameter {key} of {what} has no value yet: initialize the network "
                "and run one batch through it before saving or loading a "
                "checkpoint") from err
    return params


def _trainer_states(trainer):
    """A Gluon Trainer's state as a uint8 array: the bytes of ``save_states``."""
    with tempfile.TemporaryDirectory() as folder:
        file = os.path.join(folder, "trainer.states")
        trainer.save_states(file)
        with open(file, "rb") as f:
            return onp.frombuffer(f.read(), dtype=onp.uint8)


def _restore_trainer(trainer, states):
    """Load ``_trainer_states`` bytes with ``load_states``, which replaces the
    trainer's optimizer by the saved one; the learning rate stays the trainer's."""
    learning_rate = trainer.learning_rate
    with tempfile.TemporaryDirectory() as folder:
        file = os.path.join(folder, "trainer.states")
        with open(file, "wb") as f:
            f.write(states.tobytes())
        trainer.load_states(file)
    trainer.set_learning_rate(learning_rate)


def _trainer_order(trainer, params):
    """The structural names of ``trainer``'s parameters (``params`` maps them to
    the parameters) in the order the trainer numbers them.

    A Trainer made from ``collect_params()`` numbers the parameters in the
    sorted order of their keys, which carry global counters: as strings,
    'conv2dtranspose10_weight' sorts before 'conv2dtranspose9_weight', so two
    instances of one network can number their parameters differently. Saved
    state follows the saving trainer's numbering; ``_renumber`` translates it.
    """
    names = {id(param): key for key, param in params.items()}
    outside = [param.name for param in trainer._params if id(param) not in names]
    if outside:
        raise ValueError("the trainer updates parameters that are not in its network: "
                         f"{', '.join(outside[:5])}")
    return [names[id(param)] for param in trainer._params]


def _renumber(trainer, saved_order, order):
    """Move restored per-parameter state (Adam's moments, update counts) from
    the numbering of the saved trainer to this trainer's."""
    index = {key: i for i, key in enumerate(order)}
    new = {i: index[str(key)] for i, key in enumerate(saved_order)}
    if all(i == j for i, j in new.items()):
        return
    for updater in trainer._updaters:
        updater.states = {new[i]: state for i, state in updater.states.items()}
        updater.states_synced = dict.fromkeys(updater.states, False)
    for counts in trainer._optimizer._all_index_update_counts.values():
        renumbered = {new[i]: count for i, count in counts.items()}
        counts.clear()  # in place: the optimizer holds these dicts under two names
        counts.update(renumbered)


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
    (N, 3, 64, 64) and Z (N, latent_dim, 1, 1)). Gluon's ``SigmoidBCELoss``
    returns one value per example; we sum them, as the other tabs do, and
    step with ``step(1)`` so the update follows the gradient of that sum
    rather than of the mean. The
    fakes are made in training mode (BN uses batch statistics) but outside
    ``record``, so they are detached: no gradient reaches G. G's BN
    statistics do not move.
    """
    with autograd.train_mode(), _statistics_kept(net_G):
        fake_X = net_G(Z)
    return float(_step_D(X, fake_X, net_D, loss, trainer_D))


def _step_D(X, fake_X, net_D, loss, trainer_D):
    """D's step on a real batch and a batch of fakes that carry no record."""
    with autograd.record():
        real_Y, fake_Y = net_D(X), net_D(fake_X)
        loss_D = (loss(real_Y, np.ones_like(real_Y)).sum()
                  + loss(fake_Y, np.zeros_like(fake_Y)).sum()) / 2
    loss_D.backward()
    trainer_D.step(1)
    return loss_D


def update_G(Z, net_D, net_G, loss, trainer_G):
    """One step on the generator; returns its loss as a float.

    G maximizes log D(G(z)) (fakes scored against label 1), the form that does
    not saturate while D wins. Only G's trainer steps, and D's BN statistics
    stay as they were.
    """
    with autograd.record():
        fake_X = net_G(Z)
    return float(_step_G(fake_X, net_D, net_G, loss, trainer_G))


def _step_G(fake_X, net_D, net_G, loss, trainer_G):
    """G's step on fakes recorded in ``net_G``'s forward pass."""
    with _statistics_kept(net_D):
        with autograd.record():
            fake_Y = net_D(fake_X)
            loss_G = loss(fake_Y, np.ones_like(fake_Y)).sum()
        loss_G.backward()
    trainer_G.step(1)
    return loss_G


def step_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G):
    """``update_D_then_G`` without waiting for the result: (loss_D, loss_G) as arrays."""
    with autograd.record():
        fake_X = net_G(Z)
    loss_D = _step_D(X, fake_X.detach(), net_D, loss, trainer_D)
    return loss_D, _step_G(fake_X, net_D, net_G, loss, trainer_G)


def update_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G):
    """``update_D(X, Z, ...)`` then ``update_G(Z, ...)`` in one pass over G.

    Returns (loss_D, loss_G) as floats, the same values and the same updates
    as the two calls: G's weights do not change in D's step, so the fakes
    update_G would make again equal those update_D made. Here G runs forward
    once, recorded; D's step uses a detached copy, and G's step
    back-propagates through D, as updated by D's step, into that record. G's
    BN statistics move once, as in update_G; D's stay as its own step left them.
    """
    loss_D, loss_G = step_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G)
    return float(loss_D), float(loss_G)


def load_array(data_arrays, batch_size, is_train=True):
    """A DataLoader of tuples of batches from ``data_arrays`` (arrays of equal
    length), reshuffled every epoch when ``is_train``."""
    dataset = gluon.data.ArrayDataset(*data_arrays)
    if len(data_arrays) == 1:  # Gluon unwraps a one-array dataset; d2l yields tuples
        dataset = dataset.transform(lambda x: (x,))
    return gluon.data.DataLoader(dataset, batch_size, shuffle=is_train)


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


class TrainingRun(training.TrainingRun):
    __doc__ = training.TrainingRun.__doc__
    _framework = sys.modules[__name__]
