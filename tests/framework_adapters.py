"""Small per-framework adapters for tests written once for all frameworks.

Shapes are given channels-first (N, C, H, W); the TensorFlow adapter moves the
channels last on the way in and back on the way out. A framework is imported
only by its own adapter.
"""
import numpy as np

from tools.chapter_code import train_setting


class MXNetAdapter:
    """Gluon: call ``prepare`` (which initializes) before ``run``."""
    first_block_padding = 0
    block_options = {}

    def __init__(self):
        import mxnet as mx
        from mxnet import gluon, init
        from mxnet import np as mnp
        self.mx, self.gluon, self.init, self.mnp = mx, gluon, init, mnp

    def tensor(self, array):
        return self.mnp.array(np.asarray(array, dtype=np.float32))

    def run(self, net, array):
        """Forward ``array`` (N, C, H, W) in training mode; returns NumPy (N, C, H, W)."""
        with self.mx.autograd.train_mode():
            return net(self.tensor(array)).asnumpy()

    def forward(self, net, array):
        """``net`` on NumPy ``array`` as given (no layout change, no gradients); NumPy out."""
        return net(self.tensor(array)).asnumpy()

    def prepare(self, net, seed):
        self.mx.random.seed(seed)
        # As in the chapter: kernels from N(0, 0.02), BN scales 1 and shifts 0.
        net.initialize(self.init.Normal(0.02), force_reinit=True)

    def loss(self):
        return self.gluon.loss.SigmoidBCELoss()

    def trainer(self, net, lr):
        return self.gluon.Trainer(net.collect_params(), "adam",
                                  train_setting("mxnet", "adam", lr=lr))

    def own_draws(self):
        return self.mnp.random.normal(size=(3,)).asnumpy()

    def weights(self, net):
        """Every parameter and BN statistic as NumPy, by name."""
        return {name: p.data().asnumpy().copy()
                for name, p in net.collect_params().items()}

    def trainable_names(self, net):
        return {name for name, p in net.collect_params().items() if p.grad_req != "null"}


class PyTorchAdapter:
    first_block_padding = 0
    block_options = {}

    def __init__(self):
        import torch
        self.torch = torch

    def tensor(self, array):
        return self.torch.as_tensor(np.asarray(array, dtype=np.float32))

    def run(self, net, array):
        net.train()
        with self.torch.no_grad():
            return net(self.tensor(array)).numpy()

    def forward(self, net, array):
        with self.torch.no_grad():
            return net(self.tensor(array)).numpy()

    def prepare(self, net, seed):
        self.torch.manual_seed(seed)
        nn = self.torch.nn
        for layer in net.modules():  # as in the chapter
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(layer.weight, 0, 0.02)
            elif isinstance(layer, nn.BatchNorm2d):
                nn.init.ones_(layer.weight)
                nn.init.zeros_(layer.bias)

    def loss(self):
        return self.torch.nn.BCEWithLogitsLoss(reduction="sum")

    def trainer(self, net, lr):
        return self.torch.optim.Adam(net.parameters(), **train_setting("pytorch", "adam", lr=lr))

    def own_draws(self):
        return self.torch.randn(3).numpy()

    def weights(self, net):
        return {name: t.detach().numpy().copy() for name, t in net.state_dict().items()}

    def trainable_names(self, net):
        return {name for name, p in net.named_parameters() if p.requires_grad}


class TensorFlowAdapter:
    first_block_padding = "valid"
    block_options = {}

    def __init__(self):
        import tensorflow as tf
        self.tf = tf

    def tensor(self, array):
        return self.tf.constant(np.asarray(array, dtype=np.float32).transpose(0, 2, 3, 1))

    def run(self, net, array):
        return net(self.tensor(array), training=True).numpy().transpose(0, 3, 1, 2)

    def forward(self, net, array):
        return net(self.tf.constant(np.asarray(array, dtype=np.float32))).numpy()

    def prepare(self, net, seed):
        self.tf.random.set_seed(seed)
        draw = {"kernel": lambda shape: self.tf.random.normal(shape, stddev=0.02),
                "gamma": self.tf.ones, "beta": self.tf.zeros}  # as in the chapter
        for w in net.trainable_variables:
            w.assign(draw[w.name](w.shape))

    def loss(self):
        return self.tf.keras.losses.BinaryCrossentropy(from_logits=True, reduction="sum")

    def trainer(self, net, lr):
        return self.tf.keras.optimizers.Adam(**train_setting("tensorflow", "adam", lr=lr))

    def own_draws(self):
        return self.tf.random.normal((3,)).numpy()

    def weights(self, net):
        return {v.path: v.numpy().copy() for v in net.variables}

    def trainable_names(self, net):
        return {v.path for v in net.trainable_variables}


class JAXAdapter:
    """Flax NNX: modules get their weights when built (``block_options``)."""
    first_block_padding = 0

    def __init__(self):
        import jax
        import optax
        from flax import nnx
        self.jax, self.optax, self.nnx = jax, optax, nnx

    @property
    def block_options(self):
        return {"rngs": self.nnx.Rngs(0)}

    def tensor(self, array):
        return self.jax.numpy.asarray(np.asarray(array, dtype=np.float32).transpose(0, 2, 3, 1))

    def run(self, net, array):
        return np.asarray(net(self.tensor(array))).transpose(0, 3, 1, 2)

    def forward(self, net, array):
        return np.asarray(net(self.jax.numpy.asarray(np.asarray(array, dtype=np.float32))))

    def prepare(self, net, seed):
        nnx, key = self.nnx, self.jax.random.key(seed)
        for _, layer in nnx.iter_modules(net):  # as in the chapter
            if isinstance(layer, (nnx.Conv, nnx.ConvTranspose)):
                key, draw = self.jax.random.split(key)
                layer.kernel[...] = 0.02 * self.jax.random.normal(draw, layer.kernel.shape)
            elif isinstance(layer, nnx.BatchNorm):
                layer.scale[...] = self.jax.numpy.ones(layer.scale.shape)
                layer.bias[...] = self.jax.numpy.zeros(layer.bias.shape)

    def loss(self):
        optax = self.optax
        return lambda logits, labels: optax.sigmoid_binary_cross_entropy(logits, labels).sum()

    def trainer(self, net, lr):
        import d2l_shim
        trainer = self.nnx.Optimizer(net, train_setting("jax", "adam", lr=lr), wrt=self.nnx.Param)
        # step counters too onto the chapter's device, as its train does: one compilation
        device = d2l_shim.load("jax").try_gpu()
        self.nnx.update(trainer, self.jax.device_put(self.nnx.state(trainer), device))
        return trainer

    def own_draws(self):
        return []  # JAX has no global generator: its draws take explicit keys

    def weights(self, net):
        return {self.jax.tree_util.keystr(path): np.asarray(value).copy() for path, value
                in self.jax.tree_util.tree_flatten_with_path(self.nnx.state(net))[0]}

    def trainable_names(self, net):
        return {self.jax.tree_util.keystr(path) for path, _
                in self.jax.tree_util.tree_flatten_with_path(self.nnx.state(net, self.nnx.Param))[0]}




def adapter(framework):
    import d2l_shim
    return globals()[f"{d2l_shim.framework(framework).label}Adapter"]()


def framework_draws(framework):
    """A few random numbers from each generator a training run uses: Python's,
    NumPy's and the framework's own."""
    import random
    return [random.random(), *np.random.rand(2), *adapter(framework).own_draws()]


def chapter_data_iter(framework, images, batch_size):
    """The DCGAN chapter's own data-pipeline cell, run on uint8 images (N, 64, 64, 3)."""
    from tools.chapter_code import data_iter
    return data_iter(framework, images, batch_size)


def chapter_networks(framework, seed):
    """The DCGAN chapter's networks as its cells leave them: (namespace, net_D,
    net_G), built by one forward pass and initialized by the chapter's own
    ``init_weights`` after ``d2l.set_seed(seed)``."""
    import d2l_shim
    from tools.chapter_code import NETWORK_NAMES, chapter_namespace
    chapter = chapter_namespace(framework, "dcgan", NETWORK_NAMES)
    net_D, net_G = chapter["net_D"], chapter["net_G"]
    fw = adapter(framework)
    for net, shape in ((net_D, (1, 3, 64, 64)), (net_G, (1, 100, 1, 1))):
        fw.prepare(net, 0)  # build the layers, as the chapter's shape cells do
        fw.run(net, np.zeros(shape))
    d2l_shim.load(framework).set_seed(seed)
    chapter["init_weights"](net_D, net_G)
    return chapter, net_D, net_G
