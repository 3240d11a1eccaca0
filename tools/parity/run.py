"""One framework's side of the parity test; run it in that framework's environment.

    envs/pytorch/bin/python -m tools.parity.run --framework pytorch \\
        --inputs inputs.npz --out-dir results --dtype float32 --dtype float64

``inputs.npz`` holds the weight file's arrays (``weights.py``) plus ``Z``
(N, 100, 1, 1) and ``X`` (N, 3, 64, 64), float32, NCHW. For each ``--dtype``
the run builds the chapter's own networks in that precision, imports the
weights and writes ``<out-dir>/<framework>-<dtype>.npz`` with:

* ``G_of_Z`` (N, 3, 64, 64), ``D_of_X`` and ``D_of_G_of_Z`` (N, 1, 1, 1): one
  forward pass in training mode;
* ``loss_D``, ``loss_G``: what one ``d2l.update_D`` and one ``d2l.update_G``
  return, each started from the imported weights, with SGD at learning rate 1;
* ``grad.<key>`` for every trainable key: weight before minus weight after
  that step (the gradient, lr being 1), in float64 and the file's layout;
* ``stats.<key>`` for every BN running statistic after its network's step;
* ``seconds``: the wall time of this precision's run.

Both updates start from the imported weights (rather than ``update_G`` from
the D that ``update_D`` just moved, as in training) so that every compared
number is taken at one point: the forward pass's. A step of learning rate 1
would otherwise hand update_G a discriminator far from any trained one, whose
gradients magnify rounding differences.
"""
import argparse
import importlib
import time
from pathlib import Path

import numpy as np

from d2l_shim import FRAMEWORKS
from tools.parity.weights import (
    check_complete,
    dcgan_layers,
    load_arrays,
    save_arrays,
    statistic_names,
    trainable_names,
)

INPUT_NAMES = ("Z", "X")
DTYPES = ("float32", "float64")


def split_inputs(arrays):
    """(weights, Z, X) from the inputs file's arrays; checks the weights' layout."""
    weights = {name: array for name, array in arrays.items() if name not in INPUT_NAMES}
    check_complete(weights, dcgan_layers())
    return weights, arrays["Z"], arrays["X"]


def results_path(out_dir, framework, dtype):
    """Where ``framework``'s results in ``dtype`` go."""
    return Path(out_dir) / f"{framework}-{dtype}.npz"


def check_round_trip(exported, weights):
    """Raise unless exporting right after importing gives the file back (in value:
    a float64 network holds the float32 numbers exactly): an importer and an
    exporter that disagree would hide a layout error."""
    differing = sorted(name for name in weights
                       if not np.array_equal(exported[name], weights[name]))
    if differing:
        raise AssertionError(f"export(import(weights)) changed {differing}")


def weight_differences(before, after, names):
    """{'grad.<name>': before - after} in float64 (exact for float32 inputs)."""
    return {f"grad.{name}": before[name].astype(np.float64) - after[name] for name in names}


def of_network(names, net):
    """The keys among ``names`` that belong to ``net`` ('G' or 'D')."""
    return [name for name in names if name.startswith(f"{net}.")]


def parity_results(fw, weights, Z, X, dtype):
    """Everything one results file holds (see the module docstring), as {name: array}."""
    start = time.perf_counter()
    Z, X = Z.astype(dtype), X.astype(dtype)
    net_G, net_D, d2l = fw.load_chapter(dtype)
    fw.import_weights(net_G, net_D, weights)
    check_round_trip(fw.export_weights(net_G, net_D), weights)
    results = dict(fw.forward(net_G, net_D, Z, X))
    layers = dcgan_layers()
    trainable, statistics = trainable_names(layers), statistic_names(layers)
    # Each step starts from the file again: the forward passes above moved BN
    # statistics, and update_G should see the D of the forward pass.
    fw.import_weights(net_G, net_D, weights)
    loss_D = fw.update_D_once(net_G, net_D, d2l, Z, X)
    after_D = fw.export_weights(net_G, net_D)
    fw.import_weights(net_G, net_D, weights)
    loss_G = fw.update_G_once(net_G, net_D, d2l, Z)
    after_G = fw.export_weights(net_G, net_D)
    for net, after in (("D", after_D), ("G", after_G)):
        results.update(weight_differences(weights, after, of_network(trainable, net)))
        results.update({f"stats.{name}": after[name] for name in of_network(statistics, net)})
    results.update(loss_D=np.float64(loss_D), loss_G=np.float64(loss_G),
                   seconds=np.float64(time.perf_counter() - start))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", required=True, choices=FRAMEWORKS)
    parser.add_argument("--inputs", required=True, help="weights, Z and X (.npz)")
    parser.add_argument("--out-dir", required=True, help="folder for <framework>-<dtype>.npz")
    parser.add_argument("--dtype", action="append", choices=DTYPES,
                        help="precision of the networks (repeatable; default float32)")
    args = parser.parse_args(argv)
    weights, Z, X = split_inputs(load_arrays(args.inputs))
    fw = importlib.import_module(f"tools.parity.{args.framework}")  # one module per framework
    for dtype in args.dtype or ["float32"]:
        save_arrays(results_path(args.out_dir, args.framework, dtype),
                    parity_results(fw, weights, Z, X, dtype))


if __name__ == "__main__":
    main()
