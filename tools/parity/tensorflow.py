"""The TensorFlow tab's networks <-> the neutral weight file (see ``weights.py``).

What Keras needs:

* kernels are transposed, never flipped (Keras also stores cross-correlation
  kernels, and its transposed convolution is the gradient of its convolution
  with the same kernel, as PyTorch's is). Conv2D is (kh, kw, in, out) and
  Conv2DTranspose (kh, kw, out, in), and the file has (out, in, kh, kw) and
  (in, out, kh, kw) respectively, so the *same* permutation serves both:
  file axes (0, 1, 2, 3) -> Keras axes (2, 3, 1, 0);
* images are NHWC: Z (N, 100, 1, 1) and X (N, 3, 64, 64) are moved to channels
  last on the way in, outputs back to channels first on the way out;
* BatchNormalization calls its statistics moving_mean and moving_variance.

``padding='same'`` is PyTorch's ``padding=1`` here: for kernel 4, stride 2 and
an even input, TensorFlow pads (k - s) = 2 in total, split 1 before and 1 after
(the extra pixel of an odd total would go after). Imports TensorFlow only
(run it in envs/tensorflow).
"""
import numpy as np
import tensorflow as tf

from tools.chapter_code import NETWORK_NAMES, chapter_namespace
from tools.parity import weights
from tools.parity.weights import (
    IMAGE_CHANNELS,
    LATENT_DIM,
    TO_CHANNELS_FIRST,
    TO_CHANNELS_LAST,
    channels_last_values,
    from_channels_last,
)

FRAMEWORK = "tensorflow"
BN_ATTRIBUTES = {"gamma": "gamma", "beta": "beta",
                 "running_mean": "moving_mean", "running_var": "moving_variance"}


def load_chapter(dtype="float32"):
    """(net_G, net_D, d2l): the chapter's own networks in ``dtype``, built by one
    forward pass (Keras creates variables on the first call), and the shim the
    chapter imports. Keras layers take their dtype from the global dtype policy
    and losses theirs from ``floatx`` when they are constructed, so both are set
    before the chapter's cells run."""
    tf.keras.config.set_dtype_policy(dtype)
    tf.keras.backend.set_floatx(dtype)
    chapter = chapter_namespace(FRAMEWORK, "dcgan", NETWORK_NAMES)
    net_G, net_D = chapter["net_G"], chapter["net_D"]
    net_G(tf.zeros((1, 1, 1, LATENT_DIM), dtype), training=False)
    net_D(tf.zeros((1, 64, 64, IMAGE_CHANNELS), dtype), training=False)
    return net_G, net_D, chapter["d2l"]


def weight_layers(net):
    """The layers of a chapter Sequential that hold weights: [(conv, bn or None)]."""
    return weights.weight_layers(net.layers, (tf.keras.layers.Conv2D, tf.keras.layers.Conv2DTranspose))


def is_transposed(conv):
    return isinstance(conv, tf.keras.layers.Conv2DTranspose)


def neutral_variables(net_G, net_D):
    """{file key: the Keras variable that holds it}; raises if the chapter's
    networks do not have the file's structure, or hold variables it lacks."""
    return weights.bind_holders(
        {"G": net_G, "D": net_D}, weight_layers, is_transposed,
        kernel_of=lambda conv: conv.kernel,
        bn_part_of=lambda bn, part: getattr(bn, BN_ATTRIBUTES[part]),
        holders_of=lambda net: {variable.path: variable for variable in net.variables},
        what="variables")


def import_weights(net_G, net_D, weights):
    """Assign every variable from the file (shapes must match exactly)."""
    for variable, value in channels_last_values(neutral_variables(net_G, net_D), weights):
        variable.assign(value.astype(variable.dtype))


def export_weights(net_G, net_D):
    """The networks' variables as {file key: array in the networks' dtype}."""
    return {key: np.ascontiguousarray(from_channels_last(key, variable.numpy()))
            for key, variable in neutral_variables(net_G, net_D).items()}


def forward(net_G, net_D, Z, X):
    """G(Z) (N, 3, 64, 64), D(X) and D(G(Z)) (N, 1, 1, 1) in training mode (BN on
    batch statistics, as the chapter trains); Z (N, 100, 1, 1), X (N, 3, 64, 64),
    both in the networks' dtype."""
    fake = net_G(Z.transpose(TO_CHANNELS_LAST), training=True)
    real_Y = net_D(X.transpose(TO_CHANNELS_LAST), training=True)
    fake_Y = net_D(fake, training=True)
    return {"G_of_Z": fake.numpy().transpose(TO_CHANNELS_FIRST),
            "D_of_X": real_Y.numpy().transpose(TO_CHANNELS_FIRST),
            "D_of_G_of_Z": fake_Y.numpy().transpose(TO_CHANNELS_FIRST)}


def update_D_once(net_G, net_D, d2l, Z, X):
    """One ``d2l.update_D`` with plain SGD at learning rate 1, so each weight of
    D moves by exactly minus its gradient; returns the loss (the chapter's)."""
    trainer_D = tf.keras.optimizers.SGD(learning_rate=1.0)
    return d2l.update_D(tf.constant(X.transpose(TO_CHANNELS_LAST)),
                        tf.constant(Z.transpose(TO_CHANNELS_LAST)),
                        net_D, net_G, chapter_loss(), trainer_D)


def update_G_once(net_G, net_D, d2l, Z):
    """One ``d2l.update_G`` with plain SGD at learning rate 1; returns the loss."""
    trainer_G = tf.keras.optimizers.SGD(learning_rate=1.0)
    return d2l.update_G(tf.constant(Z.transpose(TO_CHANNELS_LAST)), net_D, net_G,
                        chapter_loss(), trainer_G)


def chapter_loss():
    """The loss the chapter's ``train`` hands to the updates."""
    return tf.keras.losses.BinaryCrossentropy(from_logits=True, reduction="sum")
