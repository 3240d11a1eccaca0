"""Drive the parity check from any environment that has NumPy: write the inputs,
run every framework in its own environment, compare each pair.

    python -m tools.parity.driver [--folder DIR] [--frameworks mxnet pytorch]
                                  [--dtype float32] [--seed 0]

prints one line per precision and pair of frameworks (the worst error of each
kind and the tensor it belongs to) and exits non-zero if any check fails. The
test ``tests/test_parity.py`` uses the same functions.
"""
import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools import FRAMEWORKS
from tools.parity.compare import TOLERANCES, compare_results, failures, summary
from tools.parity.run import DTYPES, results_path
from tools.parity.weights import LATENT_DIM, dcgan_layers, initial_weights, load_arrays, save_arrays

REPO_ROOT = Path(__file__).resolve().parents[2]
BATCH_SIZE = 4
IMAGE_SHAPE = (3, 64, 64)
#: Seconds one framework may take (start-up included) before the run counts as hung.
RUN_TIMEOUT = 300


def framework_python(framework):
    """The interpreter of ``framework``'s environment (it may not exist)."""
    return REPO_ROOT / "envs" / framework / "bin" / "python"


def parity_inputs(seed=0, batch_size=BATCH_SIZE):
    """The weights (``initial_weights``), a latent batch Z ~ N(0, 1) of shape
    (N, 100, 1, 1) and a real batch X ~ U(-1, 1) of shape (N, 3, 64, 64), the
    range of the chapter's images; all float32, all determined by ``seed``."""
    arrays = initial_weights(seed, dcgan_layers())
    rng = np.random.default_rng([seed, 1])  # a stream apart from the weights'
    arrays["Z"] = rng.normal(size=(batch_size, LATENT_DIM, 1, 1)).astype(np.float32)
    arrays["X"] = rng.uniform(-1, 1, size=(batch_size, *IMAGE_SHAPE)).astype(np.float32)
    return arrays


def single_threaded_environment():
    """The environment for a framework process: one thread per framework, so the
    runs that go in parallel do not fight over the cores (the results do not
    depend on it beyond rounding), and no TensorFlow start-up chatter."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1",
               TF_NUM_INTEROP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
    return env


@dataclass
class Run:
    """One framework's run: its results by precision, or why there are none."""
    framework: str
    results: dict | None = None   # {dtype: {name: array}}
    error: str | None = None      # the run's failure, with its stderr
    missing: bool = False         # the environment does not exist
    seconds: float = 0.0          # wall time including the interpreter start


def run_frameworks(frameworks, inputs_path, folder, dtypes=DTYPES):
    """Run ``tools.parity.run`` in each framework's environment, all at once,
    each in every precision of ``dtypes``; returns {framework: Run}."""
    runs, processes = {}, {}
    for framework in frameworks:
        python = framework_python(framework)
        if not python.exists():
            runs[framework] = Run(framework, missing=True,
                                  error=f"{python} is missing: run `make setup`")
            continue
        command = [str(python), "-m", "tools.parity.run", "--framework", framework,
                   "--inputs", str(inputs_path), "--out-dir", str(folder)]
        command += [argument for dtype in dtypes for argument in ("--dtype", dtype)]
        processes[framework] = (time.perf_counter(), subprocess.Popen(
            command, cwd=REPO_ROOT, env=single_threaded_environment(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for framework, (start, process) in processes.items():
        try:
            _, stderr = process.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            stderr = f"timed out after {RUN_TIMEOUT} s\n{stderr}"
        run = Run(framework, seconds=time.perf_counter() - start)
        if process.returncode == 0:
            run.results = {dtype: load_arrays(results_path(folder, framework, dtype))
                           for dtype in dtypes}
        else:
            run.error = f"exit status {process.returncode}:\n{stderr[-4000:]}"
        runs[framework] = run
    return runs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=FRAMEWORKS)
    parser.add_argument("--folder", help="keep the inputs and results here "
                                         "(default: a temporary folder)")
    parser.add_argument("--dtype", action="append", choices=DTYPES,
                        help="precision (repeatable; default: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    dtypes = args.dtype or list(DTYPES)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(args.folder or temporary)
        folder.mkdir(parents=True, exist_ok=True)
        inputs_path = folder / "inputs.npz"
        save_arrays(inputs_path, parity_inputs(args.seed))
        runs = run_frameworks(args.frameworks, inputs_path, folder, dtypes)
    ok = True
    for run in runs.values():
        if run.results:
            inside = ", ".join(f"{dtype} {float(results['seconds']):.1f} s"
                               for dtype, results in run.results.items())
            print(f"{run.framework}: {run.seconds:.1f} s ({inside})")
        else:
            print(f"{run.framework}: {run.error}")
            ok = False
    for dtype in dtypes:
        for pair in itertools.combinations(args.frameworks, 2):
            if any(runs[name].results is None for name in pair):
                continue
            a, b = (runs[name].results[dtype] for name in pair)
            checks = compare_results(a, b, TOLERANCES[dtype])
            print(summary(f"{dtype} {pair[0]} vs {pair[1]}", checks))
            for check in failures(checks):
                print(f"    {check}")
                ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
