"""TensorFlow (Keras 3) side of the shim: the names of ``d2l_shim.api``.

Keras is channels-last: real batches X are (N, 64, 64, 3), latents Z are
(N, 1, 1, latent_dim) and the discriminator returns logits (N, 1, 1, 1).
"""
import contextlib
import os
import random
import re
import sys

import numpy as np
import tensorflow as tf

from . import checkpoints, fashion_mnist, plotting, swd, training
from ._exports import *  # noqa: F403  (the framework-free names)
from .api import PUBLIC_NAMES

__all__ = list(PUBLIC_NAMES)


def num_gpus():
    """The number of GPUs visible to TensorFlow."""
    return len(tf.config.list_physical_devices("GPU"))


def try_gpu(i=0):
    """The name of GPU ``i`` if it exists, else of the CPU, for ``tf.device``
    (d2l returns the context itself; a name also prints readably)."""
    return f"/GPU:{i}" if num_gpus() > i else "/CPU:0"


def numpy(x):
    """A NumPy copy of a tensor or variable; arrays pass through."""
    if hasattr(x, "numpy"):
        return x.numpy()
    return np.asarray(x)


def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
    """Plot a grid of images (N, H, W, C) given as a tensor or an array."""
    return plotting.show_images(numpy(imgs), num_rows, num_cols, titles, scale)


def count_parameters(net):
    """The number of trainable scalars in a built ``net``."""
    return sum(int(np.prod(v.shape)) for v in net.trainable_variables)


def set_seed(seed, epoch=None):
    """Seed Python, NumPy, TensorFlow and Keras for a repeatable run.

    With an ``epoch``, seed them from ``checkpoints.epoch_seed(seed, epoch)``
    instead. TensorFlow cannot export its global generator's state, so a loop
    that resumes from a checkpoint calls this at the start of every epoch: each
    epoch's latents then depend on (seed, epoch) alone. (The order of a
    ``tf.data`` shuffle does not follow; see ``load_checkpoint``.)
    """
    if epoch is not None:
        seed = checkpoints.epoch_seed(seed, epoch)
    random.seed(seed)
    tf.keras.utils.set_random_seed(seed)


def save_checkpoint(path, net_D, net_G, trainer_D, trainer_G, history, seed):
    """Save both networks, both optimizers and the training history to ``path``.

    One ``.npz`` file, replaced atomically (see ``d2l_shim.checkpoints``): all
    of each network's ``variables`` (weights and BatchNorm moving statistics),
    all of each optimizer's ``variables`` (step count, Adam's moments), the
    history (``history``: rows of numbers, one per epoch from epoch 0) and
    the run's ``seed``. ``load_checkpoint`` restores it.
    """
    arrays = checkpoints.metadata("tensorflow", history, seed)
    for name, variables in _checkpointed(net_D, net_G, trainer_D, trainer_G).items():
        arrays.update(checkpoints.with_prefix(
            name, {key: v.numpy() for key, v in variables.items()}))
    checkpoints.write_arrays_atomically(path, arrays)


def load_checkpoint(path, net_D, net_G, trainer_D, trainer_G, data_iter, seed):
    """Restore what ``save_checkpoint`` wrote to ``path``; return the history.

    Returns the stored history, one row per epoch from epoch 0 (the untrained
    networks, see ``d2l_shim.training``), or ``[]`` if ``path`` does not exist
    yet (a fresh run). Variables of both networks (BatchNorm's
    moving statistics included) and both optimizers come back bitwise; an
    optimizer that has not been built yet is built first, and each keeps its
    own learning rate. A ``tf.data`` shuffle reshuffles with a counter of its
    passes that lives in the dataset and cannot be saved, so ``data_iter`` (as
    fresh as it was when the interrupted run started) is iterated once per
    finished epoch here: the next epoch then sees the order an uninterrupted run
    would have seen. Raises ``checkpoints.CheckpointError`` for a corrupt file
    and for one written by another framework, for another model or with
    another seed; these are found before anything changes.
    """
    if not os.path.exists(path):
        return []
    objects = _checkpointed(net_D, net_G, trainer_D, trainer_G)
    expected = {name: {key: tuple(v.shape) for key, v in variables.items()}
                for name, variables in objects.items()}
    history, parts = checkpoints.read_checked(path, "tensorflow", seed, expected)
    for name, variables in objects.items():
        for key, value in parts[name].items():
            if variables[key].name != "learning_rate":  # keep the optimizer's own
                variables[key].assign(value)
    for _ in history[1:]:  # replay the finished epochs' passes; row 0 is epoch 0
        for _ in data_iter:
            pass
    return history


def _checkpointed(net_D, net_G, trainer_D, trainer_G):
    """What a checkpoint holds: part name -> {stable name: variable}."""
    parts = {"net_D": net_D.variables, "net_G": net_G.variables,
             "trainer_D": _built(trainer_D, net_D).variables,
             "trainer_G": _built(trainer_G, net_G).variables}
    return {name: _by_stable_name(variables) for name, variables in parts.items()}


def _by_stable_name(variables):
    """Variables by names equal in every instance of a network: position, then path
    without Keras' counters ('sequential_3/g_block_12/gamma' -> '007/sequential/g_block/gamma')."""
    return {f"{index:03d}/" + re.sub(r"_\d+(?=/|_|$)", "", variable.path): variable
            for index, variable in enumerate(variables)}


@contextlib.contextmanager
def _statistics_kept(net):
    """Run ``net`` in training mode without letting it move its BatchNorm
    moving statistics (its non-trainable variables), which are restored.

    Each network's statistics should follow its own step only: G's are not
    touched by D's update, D's not by G's. Training itself never reads them
    (BN normalizes with batch statistics when ``training=True``).
    """
    variables = net.non_trainable_variables
    saved = [tf.identity(v) for v in variables]
    try:
        yield
    finally:
        for variable, value in zip(variables, saved):
            variable.assign(value)


# Compiled steps by (step, ids of the objects bound to it); the values hold the
# objects themselves, so an id in a key cannot be reused while cached.
_compiled_steps = {}


def _compiled(step, *objects):
    """``step`` as a ``tf.function`` with ``objects`` (networks, loss, optimizers)
    bound after its tensors, traced once: one graph instead of op by op is what
    makes TensorFlow's step fast."""
    key = (step, *map(id, objects))
    if key not in _compiled_steps:
        def bound(*tensors):
            return step(*tensors, *objects)
        _compiled_steps[key] = (tf.function(bound, reduce_retracing=True), objects)
    return _compiled_steps[key][0]


def _built(trainer, net):
    """``trainer`` with its variables made: a ``tf.function`` may create
    variables only when it is first traced."""
    if not trainer.built:
        trainer.build(net.trainable_variables)
    return trainer


def _step_D(X, fake_X, net_D, loss, trainer_D):
    """D's step on a real batch and fakes that no tape of G's records."""
    with tf.GradientTape() as tape:
        real_Y = net_D(X, training=True)
        fake_Y = net_D(fake_X, training=True)
        loss_D = (loss(tf.ones_like(real_Y), real_Y)
                  + loss(tf.zeros_like(fake_Y), fake_Y)) / 2
    grads = tape.gradient(loss_D, net_D.trainable_variables)
    trainer_D.apply_gradients(zip(grads, net_D.trainable_variables))
    return loss_D


def _step_G(fake_X, tape, net_D, net_G, loss, trainer_G):
    """G's step on fakes that ``net_G`` made while ``tape`` recorded."""
    with _statistics_kept(net_D), tape:  # G's tape records on, through D
        fake_Y = net_D(fake_X, training=True)
        loss_G = loss(tf.ones_like(fake_Y), fake_Y)
    grads = tape.gradient(loss_G, net_G.trainable_variables)
    trainer_G.apply_gradients(zip(grads, net_G.trainable_variables))
    return loss_G


def _update_D(X, Z, net_D, net_G, loss, trainer_D):
    with _statistics_kept(net_G):
        fake_X = net_G(Z, training=True)  # no tape: no gradient reaches G
    return _step_D(X, fake_X, net_D, loss, trainer_D)


def _update_G(Z, net_D, net_G, loss, trainer_G):
    with tf.GradientTape() as tape:
        fake_X = net_G(Z, training=True)
    return _step_G(fake_X, tape, net_D, net_G, loss, trainer_G)


def _update_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G):
    with tf.GradientTape() as tape:
        fake_X = net_G(Z, training=True)
    loss_D = _step_D(X, fake_X, net_D, loss, trainer_D)  # off G's tape
    return loss_D, _step_G(fake_X, tape, net_D, net_G, loss, trainer_G)


def update_D(X, Z, net_D, net_G, loss, trainer_D):
    """One step on the discriminator; returns its loss as a float.

    D maximizes log D(x) + log(1 - D(G(z))): binary cross-entropy with label 1
    for the real batch X and 0 for the fakes G(Z) (for the DCGAN, X is
    (N, 64, 64, 3) and Z (N, 1, 1, latent_dim)). ``loss`` is
    ``BinaryCrossentropy(from_logits=True, reduction="sum")``. The fakes are
    made before D's tape starts, so no gradient reaches G, and G's BN
    statistics do not move. The step runs as a compiled ``tf.function``.
    """
    step = _compiled(_update_D, net_D, net_G, loss, _built(trainer_D, net_D))
    return float(step(X, Z))


def update_G(Z, net_D, net_G, loss, trainer_G):
    """One step on the generator; returns its loss as a float.

    G maximizes log D(G(z)) (fakes scored against label 1), the form that does
    not saturate while D wins. The tape differentiates only G's variables, and
    D's BN statistics stay as they were. Compiled like ``update_D``.
    """
    step = _compiled(_update_G, net_D, net_G, loss, _built(trainer_G, net_G))
    return float(step(Z))


def step_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G):
    """``update_D_then_G`` without waiting for the result: (loss_D, loss_G) as tensors."""
    step = _compiled(_update_D_then_G, net_D, net_G, loss,
                     _built(trainer_D, net_D), _built(trainer_G, net_G))
    return step(X, Z)


def update_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G):
    """``update_D(X, Z, ...)`` then ``update_G(Z, ...)`` in one pass over G.

    Returns (loss_D, loss_G) as floats, the same values and the same updates
    as the two calls: G's weights do not change in D's step, so the fakes
    update_G would make again equal those update_D made. Here G runs forward
    once under G's tape; D's step runs off that tape (the fakes are constants
    there), and G's step back-propagates through D, as updated by D's step.
    G's BN statistics move once, as in update_G; D's stay as its own step left
    them. Both steps run as one compiled ``tf.function``.
    """
    loss_D, loss_G = step_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G)
    return float(loss_D), float(loss_G)


def load_array(data_arrays, batch_size, is_train=True):
    """A ``tf.data`` pipeline of tuples of batches from ``data_arrays`` (arrays
    of equal length), reshuffled every epoch when ``is_train``."""
    dataset = tf.data.Dataset.from_tensor_slices(tuple(data_arrays))
    if is_train:
        dataset = dataset.shuffle(len(data_arrays[0]))
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def load_data_fashion_mnist(batch_size, resize=None):
    """Fashion-MNIST as (train_iter, test_iter), tf.data datasets of (X, y).

    X is float32 in [0, 1] of shape (N, 28, 28, 1), or (N, resize, resize, 1)
    (channels last, as Keras wants); y holds int32 labels 0-9
    (``get_fashion_mnist_labels`` names them). The training set is reshuffled
    every epoch. The archives come through the data hub; see
    ``d2l_shim.fashion_mnist``.
    """
    def dataset(split, shuffle):
        images, labels = fashion_mnist.load_fashion_mnist_arrays(split, resize)
        # uint8 until batched: 4x smaller than float32.
        data = tf.data.Dataset.from_tensor_slices(
            (images[..., None], labels.astype(np.int32)))
        if shuffle:
            data = data.shuffle(len(images))
        return (data.batch(batch_size).map(_uint8_batch_to_float)
                .prefetch(tf.data.AUTOTUNE))
    return dataset("train", True), dataset("test", False)


def _uint8_batch_to_float(X, y):
    return tf.cast(X, tf.float32) / 255, y


def sample_images(net_G, num_images, latent_dim):
    """``num_images`` generated images as uint8 (N, 64, 64, 3), for viewing or
    for ``sliced_wasserstein_distance``. G runs in training mode, as during
    training (BN on batch statistics); its BN statistics are left alone."""
    with _statistics_kept(net_G):
        fake = net_G(tf.random.normal((num_images, 1, 1, latent_dim)), training=True)
    return swd.images_from_tanh(numpy(fake))


class TrainingRun(training.TrainingRun):
    __doc__ = training.TrainingRun.__doc__
    _framework = sys.modules[__name__]
