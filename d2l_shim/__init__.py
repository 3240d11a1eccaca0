"""Helpers for the book's chapters, one module per framework with the same names.

    from d2l_shim import torch as d2l        # or: mxnet, jax, tensorflow

The names follow the d2l package, so code from *Dive into Deep Learning* reads the
same here. Each framework module (``mxnet``, ``torch``, ``jax``, ``tensorflow``) holds only
what differs between frameworks and imports its framework itself; everything
framework-free lives once (``timing``, ``plotting``, ``hub``, ``images``,
``profiles``, ``training``). Importing this package imports no framework, so a
reader without TensorFlow never pays for it. ``d2l_shim.api`` lists the shared
public names, and ``TABLE`` below is the one list of frameworks.
"""
import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Framework:
    """One framework of the book; everything else reads these rows."""
    #: The ``#@tab`` tag, the Jupyter kernel, the ``envs/<name>`` folder, the
    #: ``requirements/<name>.txt`` pins and ``tools/parity/<name>.py``.
    name: str
    #: The shim module, ``d2l_shim.<module>``.
    module: str
    #: The tab label in the book.
    label: str
    #: The environment file for a machine with a GPU.
    gpu_environment: str
    #: Environment variables its processes need (MXNet leaves a core idle unless told).
    environment: tuple = ()


TABLE = (
    Framework("mxnet", "mxnet", "MXNet", "environments/mxnet-gpu.yml",
              environment=(("OMP_NUM_THREADS", "cpu_count"),)),
    Framework("pytorch", "torch", "PyTorch", "environment.yml"),
    Framework("jax", "jax", "JAX", "environments/jax-gpu.yml"),
    Framework("tensorflow", "tensorflow", "TensorFlow", "environments/tensorflow-gpu.yml"),
)

#: Framework names, in the order of the book's tabs.
FRAMEWORKS = tuple(row.name for row in TABLE)


def framework(name):
    """The row of ``TABLE`` for ``name``; ValueError naming the known ones."""
    for row in TABLE:
        if row.name == name:
            return row
    raise ValueError(f"unknown framework {name!r}: choose one of {', '.join(FRAMEWORKS)}")


def load(name):
    """Return the shim module for framework ``name`` (one of ``FRAMEWORKS``)."""
    return importlib.import_module(f"d2l_shim.{framework(name).module}")


def process_environment(name, cpu_count):
    """The environment variables a process of framework ``name`` needs."""
    return {key: str(cpu_count) if value == "cpu_count" else value
            for key, value in framework(name).environment}
