"""Execute split notebooks, each in the Jupyter kernel its metadata names.

    python -m tools.execute build/split/pytorch/dcgan.ipynb --out build/notebooks/pytorch/dcgan.ipynb

The kernel (``mxnet``, ``pytorch`` or ``tensorflow``) must be registered where
this Python's Jupyter looks, which ``make setup`` does. The executed notebook is
written to a temporary file and renamed, so a failed run never leaves a
half-written notebook that looks finished.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tools import write_text_atomically


def execute_notebook(source, target, timeout=1800):
    """Run every cell of ``source`` and write the notebook with outputs to ``target``.

    Returns the wall time in seconds. Raises CellExecutionError (naming the cell
    and the error) if a cell fails; ``target`` is then left untouched.
    """
    notebook = nbformat.read(source, as_version=4)
    kernel = notebook.metadata.get("kernelspec", {}).get("name")
    if not kernel:
        raise ValueError(f"{source} names no kernel in metadata.kernelspec.name")
    client = NotebookClient(notebook, timeout=timeout, kernel_name=kernel,
                            resources={"metadata": {"path": str(Path(source).parent)}})
    # The kernel inherits this environment; an MPLBACKEND such as Agg there would
    # replace the inline backend and the notebook would lose all its figures.
    os.environ.pop("MPLBACKEND", None)
    started = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - started
    # Always rewritten (even if unchanged), so make sees it newer than its sources.
    write_text_atomically(target, nbformat.writes(notebook) + "\n")
    return elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)
    try:
        elapsed = execute_notebook(args.notebook, args.out, args.timeout)
    except CellExecutionError as err:
        print(f"{args.notebook}: a cell failed\n{err}", file=sys.stderr)
        return 1
    print(f"executed {args.notebook} -> {args.out} in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
