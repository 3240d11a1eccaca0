"""Helpers for the book's chapters, one module per framework with the same names.

    from d2l_shim import torch as d2l        # or: mxnet, tensorflow

The names follow the d2l package, so code from *Dive into Deep Learning* reads the
same here. Each framework module (``mxnet``, ``torch``, ``tensorflow``) holds only
what differs between frameworks and imports its framework itself; everything
framework-free lives once (``timing``, ``plotting``, ``hub``, ``images``,
``profiles``). Importing this package imports no framework, so a reader without
TensorFlow never pays for it. ``d2l_shim.api`` lists the shared public names.
"""
import importlib

#: Framework names as used in ``#@tab`` tags, kernel names and environments.
FRAMEWORKS = ("mxnet", "pytorch", "tensorflow")

#: The shim module (``d2l_shim.<module>``) that serves each framework.
MODULE_OF = {"mxnet": "mxnet", "pytorch": "torch", "tensorflow": "tensorflow"}


def load(framework):
    """Return the shim module for ``framework`` (one of ``FRAMEWORKS``).

    Raises ValueError for an unknown name, listing the known ones.
    """
    if framework not in MODULE_OF:
        raise ValueError(
            f"unknown framework {framework!r}: choose one of {', '.join(FRAMEWORKS)}")
    return importlib.import_module(f"d2l_shim.{MODULE_OF[framework]}")
