"""Time one DCGAN training step in one framework (run inside that framework's env).

    envs/pytorch/bin/python -m tools.bench_step --framework pytorch --batch-sizes 64 256

Prints one JSON object per line: a result per (variant, batch size) and one for
the data pipeline. Two variants of the step are timed in the same process:

* ``plain``: ``update_D`` then ``update_G`` exactly as the original section
  writes them (eager, G run twice, D's weight gradients computed in ``update_G``
  and thrown away, Gluon blocks not hybridized). This is the baseline.
* ``chapter``: the shim's ``update_D_then_G`` (update_D then update_G with
  G's forward pass shared) with the chapter's settings (MXNet hybridized,
  PyTorch channels-last, TensorFlow compiled with ``tf.function``).
* ``compiled`` (a trial, not in the default set): the chapter's step with the
  framework's heavier compiler, ``torch.compile(dynamic=False)`` on both
  networks in PyTorch, XLA (``jit_compile=True``) in TensorFlow. MXNet has none
  beyond ``hybridize``; JAX's chapter step is an XLA program already.

In JAX, ``plain`` is ``update_D`` then ``update_G``, two compiled programs.

The networks are the chapter's own (executed from the split notebook).
"""
import argparse
import json
import os
import statistics
import sys
import time

import d2l_shim
from tools.chapter_code import NETWORK_NAMES, chapter_namespace, data_iter, train_setting

LATENT_DIM = 100


def median_rate(step, batch_size, warmup, repeats, steps_per_repeat):
    """Median examples/s of ``step()`` over ``repeats`` timed runs after warm-up."""
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps_per_repeat):
            step()
        rates.append(batch_size * steps_per_repeat / (time.perf_counter() - start))
    return statistics.median(rates), rates


#: Kinds of operators in a step's profile, by a word of their names (first match).
OPERATOR_KINDS = {"convolution": ("conv",), "batch norm": ("batch_norm",),
                  "activation": ("relu", "threshold", "clamp", "tanh", "sigmoid"),
                  "other": ("",)}


def operator_kind(name):
    """The kind of ``OPERATOR_KINDS`` an operator's name belongs to."""
    return next(kind for kind, words in OPERATOR_KINDS.items()
                if any(word in name for word in words))


def breakdown_result(bench, framework, batch_size, steps, gflop_per_step):
    """Seconds per step by kind of operator, and the convolutions' GFLOP/s
    (``gflop_per_step``: nearly all of a step's arithmetic is convolution)."""
    seconds = bench.breakdown(batch_size, steps)
    total = sum(seconds.values())
    return {"framework": framework, "kind": "breakdown", "batch_size": batch_size,
            "seconds_per_step": total, "seconds": seconds,
            "shares": {kind: value / total for kind, value in seconds.items()},
            "convolution_gflops": gflop_per_step / seconds["convolution"]}


def shim_step(d2l, X, Z, net_D, net_G, loss, trainer_D, trainer_G):
    """The chapter's training step: the shim's ``update_D_then_G``."""
    return lambda: d2l.update_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G)


class PyTorchBench:
    def __init__(self):
        import torch
        from torch import nn

        from d2l_shim import torch as d2l
        self.torch, self.nn, self.d2l = torch, nn, d2l

    def networks(self, channels_last):
        ns = chapter_namespace("pytorch", "dcgan", NETWORK_NAMES)
        nets = ns["net_D"], ns["net_G"]
        if channels_last:
            ns["init_weights"](*nets)
        else:  # the original section's initialization, every tensor N(0, 0.02)
            for w in (w for net in nets for w in net.parameters()):
                self.nn.init.normal_(w, 0, 0.02)
        return nets

    def trainers(self, net_D, net_G, lr=0.005):
        adam = train_setting("pytorch", "adam", lr=lr)
        return (self.torch.optim.Adam(net_D.parameters(), **adam),
                self.torch.optim.Adam(net_G.parameters(), **adam))

    def batch(self, batch_size, channels_last):
        X = self.torch.rand(batch_size, 3, 64, 64) * 2 - 1
        if channels_last:
            X = X.contiguous(memory_format=self.torch.channels_last)
        return X, self.torch.randn(batch_size, LATENT_DIM, 1, 1)

    def plain_step(self, batch_size):
        torch = self.torch
        net_D, net_G = self.networks(channels_last=False)
        trainer_D, trainer_G = self.trainers(net_D, net_G)
        loss = self.nn.BCEWithLogitsLoss(reduction="sum")
        X, Z = self.batch(batch_size, channels_last=False)
        ones, zeros = torch.ones(batch_size, 1, 1, 1), torch.zeros(batch_size, 1, 1, 1)

        def step():
            trainer_D.zero_grad()
            fake_X = net_G(Z)
            loss_D = (loss(net_D(X), ones) + loss(net_D(fake_X.detach()), zeros)) / 2
            loss_D.backward()
            trainer_D.step()
            trainer_G.zero_grad()
            loss_G = loss(net_D(net_G(Z)), ones)
            loss_G.backward()
            trainer_G.step()
            return float(loss_D), float(loss_G)
        return step

    def chapter_step(self, batch_size):
        net_D, net_G = self.networks(channels_last=True)
        return shim_step(self.d2l, *self.batch(batch_size, channels_last=True), net_D, net_G,
                         self.nn.BCEWithLogitsLoss(reduction="sum"),
                         *self.trainers(net_D, net_G))

    def breakdown(self, batch_size, steps):
        """Where the chapter step's time goes: torch.profiler's self CPU time
        per kind of operator, summed over ``steps`` steps after a warm-up."""
        from torch.profiler import ProfilerActivity, profile
        step = self.chapter_step(batch_size)
        step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step()
        seconds = dict.fromkeys(OPERATOR_KINDS, 0.0)
        for event in prof.key_averages():
            seconds[operator_kind(event.key)] += event.self_cpu_time_total / 1e6 / steps
        return seconds

    def compiled_step(self, batch_size):
        net_D, net_G = self.networks(channels_last=True)
        trainers = self.trainers(net_D, net_G)  # on the parameters, shared with the compiled nets
        # dynamic=False: the default (dynamic shapes) failed on recompiling with torch 2.13.
        compiled_D, compiled_G = (self.torch.compile(net, dynamic=False) for net in (net_D, net_G))
        return shim_step(self.d2l, *self.batch(batch_size, channels_last=True), compiled_D,
                         compiled_G, self.nn.BCEWithLogitsLoss(reduction="sum"), *trainers)



class MXNetBench:
    def __init__(self):
        from mxnet import autograd, gluon, init, npx
        from mxnet import np as mnp

        from d2l_shim import mxnet as d2l
        npx.set_np()
        self.autograd, self.gluon, self.init, self.np, self.d2l = autograd, gluon, init, mnp, d2l

    def networks(self, hybridize):
        ns = chapter_namespace("mxnet", "dcgan", NETWORK_NAMES)
        nets = ns["net_D"], ns["net_G"]
        for net in nets:
            net.initialize(self.init.Normal(0.02), force_reinit=True)
            if hybridize:  # as the chapter's init_weights does
                net.hybridize()
        return nets

    def trainers(self, net_D, net_G, lr=0.005):
        adam = train_setting("mxnet", "adam", lr=lr)
        return (self.gluon.Trainer(net_D.collect_params(), "adam", adam),
                self.gluon.Trainer(net_G.collect_params(), "adam", adam))

    def batch(self, batch_size):
        return (self.np.random.uniform(-1, 1, size=(batch_size, 3, 64, 64)),
                self.np.random.normal(0, 1, size=(batch_size, LATENT_DIM, 1, 1)))

    def plain_step(self, batch_size):
        autograd, np = self.autograd, self.np
        net_D, net_G = self.networks(hybridize=False)
        trainer_D, trainer_G = self.trainers(net_D, net_G)
        loss = self.gluon.loss.SigmoidBCELoss()
        X, Z = self.batch(batch_size)
        ones, zeros = np.ones((batch_size,)), np.zeros((batch_size,))

        def step():
            with autograd.record():
                fake_X = net_G(Z)
                loss_D = (loss(net_D(X), ones) + loss(net_D(fake_X.detach()), zeros)) / 2
            loss_D.backward()
            trainer_D.step(batch_size)
            with autograd.record():
                loss_G = loss(net_D(net_G(Z)), ones)
            loss_G.backward()
            trainer_G.step(batch_size)
            return float(loss_D.sum()), float(loss_G.sum())
        return step

    def chapter_step(self, batch_size):
        net_D, net_G = self.networks(hybridize=True)
        return shim_step(self.d2l, *self.batch(batch_size), net_D, net_G,
                         self.gluon.loss.SigmoidBCELoss(), *self.trainers(net_D, net_G))



class TensorFlowBench:
    def __init__(self):
        import tensorflow as tf

        from d2l_shim import tensorflow as d2l
        self.tf, self.d2l = tf, d2l

    def networks(self):
        ns = chapter_namespace("tensorflow", "dcgan", NETWORK_NAMES)
        net_D, net_G = ns["net_D"], ns["net_G"]
        net_D(self.tf.zeros((1, 64, 64, 3)))
        net_G(self.tf.zeros((1, 1, 1, LATENT_DIM)))
        ns["init_weights"](net_D, net_G)
        return net_D, net_G

    def trainers(self, lr=0.005):
        adam = train_setting("tensorflow", "adam", lr=lr)
        return self.tf.keras.optimizers.Adam(**adam), self.tf.keras.optimizers.Adam(**adam)

    def batch(self, batch_size):
        tf = self.tf
        return (tf.random.uniform((batch_size, 64, 64, 3), -1, 1),
                tf.random.normal((batch_size, 1, 1, LATENT_DIM)))

    def loss(self):
        return self.tf.keras.losses.BinaryCrossentropy(from_logits=True, reduction="sum")

    def plain_step(self, batch_size):
        tf = self.tf
        net_D, net_G = self.networks()
        trainer_D, trainer_G = self.trainers()
        loss = self.loss()
        X, Z = self.batch(batch_size)
        ones, zeros = tf.ones((batch_size, 1, 1, 1)), tf.zeros((batch_size, 1, 1, 1))

        def step():
            fake_X = net_G(Z, training=True)
            with tf.GradientTape() as tape:
                loss_D = (loss(ones, net_D(X, training=True))
                          + loss(zeros, net_D(fake_X, training=True))) / 2
            grads = tape.gradient(loss_D, net_D.trainable_variables)
            trainer_D.apply_gradients(zip(grads, net_D.trainable_variables))
            with tf.GradientTape() as tape:
                loss_G = loss(ones, net_D(net_G(Z, training=True), training=True))
            grads = tape.gradient(loss_G, net_G.trainable_variables)
            trainer_G.apply_gradients(zip(grads, net_G.trainable_variables))
            return float(loss_D), float(loss_G)
        return step

    def chapter_step(self, batch_size):
        net_D, net_G = self.networks()
        return shim_step(self.d2l, *self.batch(batch_size), net_D, net_G, self.loss(),
                         *self.trainers())

    def compiled_step(self, batch_size):
        net_D, net_G = self.networks()
        trainer_D, trainer_G = self.trainers()
        for trainer, net in ((trainer_D, net_D), (trainer_G, net_G)):
            trainer.build(net.trainable_variables)
        loss, (X, Z) = self.loss(), self.batch(batch_size)
        xla = self.tf.function(jit_compile=True)(
            lambda X, Z: self.d2l.step_D_then_G(X, Z, net_D, net_G, loss, trainer_D, trainer_G))
        return lambda: tuple(float(value) for value in xla(X, Z))



class JAXBench:
    def __init__(self):
        import jax
        import optax
        from flax import nnx

        from d2l_shim import jax as d2l
        self.jax, self.optax, self.nnx, self.d2l = jax, optax, nnx, d2l

    def networks(self):
        ns = chapter_namespace("jax", "dcgan", NETWORK_NAMES)
        ns["init_weights"](ns["net_D"], ns["net_G"])
        return ns["net_D"], ns["net_G"]

    def trainers(self, net_D, net_G, lr=0.005):
        adam = train_setting("jax", "adam", lr=lr)
        trainers = tuple(self.nnx.Optimizer(net, adam, wrt=self.nnx.Param) for net in (net_D, net_G))
        for trainer in trainers:  # as the chapter's train: the step compiles once
            self.nnx.update(trainer, self.jax.device_put(self.nnx.state(trainer), self.d2l.try_gpu()))
        return trainers

    def batch(self, batch_size):
        key_X, key_Z = self.jax.random.split(self.jax.random.key(0))
        return (self.jax.random.uniform(key_X, (batch_size, 64, 64, 3), minval=-1, maxval=1),
                self.jax.random.normal(key_Z, (batch_size, 1, 1, LATENT_DIM)))

    def loss(self):
        optax = self.optax
        return lambda logits, labels: optax.sigmoid_binary_cross_entropy(logits, labels).sum()

    def plain_step(self, batch_size):
        """Two compiled programs, ``update_D`` then ``update_G``: G runs twice."""
        net_D, net_G = self.networks()
        trainer_D, trainer_G = self.trainers(net_D, net_G)
        loss, (X, Z), d2l = self.loss(), self.batch(batch_size), self.d2l

        def step():
            loss_D = d2l.update_D(X, Z, net_D, net_G, loss, trainer_D)
            return loss_D, d2l.update_G(Z, net_D, net_G, loss, trainer_G)
        return step

    def chapter_step(self, batch_size):
        net_D, net_G = self.networks()
        return shim_step(self.d2l, *self.batch(batch_size), net_D, net_G, self.loss(),
                         *self.trainers(net_D, net_G))



def pipeline_epoch(framework, images, batch_size):
    """One epoch of the chapter's own data pipeline, as a function returning its image count."""
    batches = data_iter(framework, images, batch_size)

    def first(batch):  # PyTorch and JAX yield (X,), MXNet and TensorFlow X
        return batch[0] if isinstance(batch, list | tuple) else batch
    return lambda: sum(int(first(batch).shape[0]) for batch in batches)


def bench_class(framework):
    """The benchmark class of ``framework``: ``<label>Bench`` in this module."""
    return globals()[f"{d2l_shim.framework(framework).label}Bench"]


def pipeline_result(framework, batch_size, repeats):
    """Images/s of the data pipeline: PNG archive -> decoded array (first run,
    then cached) and cached array -> batches, per epoch."""
    from d2l_shim import hub
    from d2l_shim import images as image_io
    folder = hub.download_extract("noto_emoji_64")
    cache = image_io.cache_path(folder, 64)
    if os.path.exists(cache):
        os.remove(cache)  # time the one-off decode too
    start = time.perf_counter()
    images = image_io.read_image_folder(folder, size=64)
    decode_rate = len(images) / (time.perf_counter() - start)
    start = time.perf_counter()
    image_io.read_image_folder(folder, size=64)
    cached_rate = len(images) / (time.perf_counter() - start)
    epoch = pipeline_epoch(framework, images, batch_size)
    rate, rates = median_rate(epoch, 1, warmup=1, repeats=repeats, steps_per_repeat=1)
    return {"framework": framework, "kind": "pipeline", "batch_size": batch_size,
            "images": len(images), "decode_png_images_per_s": decode_rate,
            "load_cached_images_per_s": cached_rate,
            "epoch_images_per_s": rate * len(images), "runs": [r * len(images) for r in rates]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", required=True, choices=d2l_shim.FRAMEWORKS)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--variants", nargs="+", default=["plain", "chapter"])
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2, help="steps per timed repeat")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the data pipeline")
    parser.add_argument("--breakdown", type=float, metavar="GFLOP_PER_EXAMPLE",
                        help="profile the chapter step at the first batch size by kind of "
                             "operator (frameworks whose bench has a profiler)")
    args = parser.parse_args(argv)
    bench = bench_class(args.framework)()
    for batch_size in args.batch_sizes:
        for variant in args.variants:
            if not hasattr(bench, f"{variant}_step"):
                continue  # e.g. MXNet has no 'compiled' variant
            step = getattr(bench, f"{variant}_step")(batch_size)
            rate, rates = median_rate(step, batch_size, args.warmup, args.repeats, args.steps)
            print(json.dumps({"framework": args.framework, "kind": "step", "variant": variant,
                              "batch_size": batch_size, "examples_per_s": rate, "runs": rates}),
                  flush=True)
    if args.breakdown and hasattr(bench, "breakdown"):
        batch_size = args.batch_sizes[0]
        print(json.dumps(breakdown_result(bench, args.framework, batch_size, args.steps + 1,
                                          args.breakdown * batch_size)), flush=True)
    if not args.no_pipeline:
        print(json.dumps(pipeline_result(args.framework, 64, args.repeats)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
