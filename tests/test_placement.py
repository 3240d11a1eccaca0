"""Device placement, proven on a CPU: the MXNet and JAX tabs run on the device
``try_gpu()`` names, even when that is not the default one.

Each runs the DCGAN chapter's notebook (quick profile) with ``try_gpu()``
returning a second CPU device, where a forgotten placement line fails as it
would on a GPU box; a second run with that line removed from ``train`` shows
the check can fail.

* MXNet refuses to mix contexts: a network initialized on ``mx.cpu(1)`` rejects
  input on ``mx.cpu(0)``.
* JAX gets two CPU devices from ``--xla_force_host_platform_device_count=2``;
  a compiled step refuses arrays committed to different devices (the networks
  on one, the batch on the other), and after training every parameter,
  statistic and optimizer state must be on the second device.

(PyTorch and TensorFlow have no such stand-in on a CPU: PyTorch has one CPU
device, and TensorFlow copies tensors between devices by itself.)
"""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPO_ROOT = Path(__file__).resolve().parents[1]

#: framework -> (first cell, the placement line in the cell of train, what the
#: run prints, the error a run without that line raises)
SECOND_DEVICE = {
    "mxnet": ("import mxnet as mx\n"
              "from d2l_shim import mxnet as _shim\n"
              "_shim.try_gpu = lambda i=0: mx.cpu(1)  # stands in for a GPU\n",
              ".as_in_ctx(device)", "examples/sec on cpu(1)", r"cpu\(1\)"),
    "jax": ("import jax\n"
            "from d2l_shim import jax as _shim\n"
            "_shim.try_gpu = lambda i=0: jax.devices('cpu')[1]  # stands in for a GPU\n",
            "nnx.update(net, jax.device_put(nnx.state(net), device))",
            "placement ['cpu:1']", "incompatible devices"),
}
#: A last cell that reports the devices holding the JAX networks' and optimizers' state.
JAX_REPORT = ("states = nnx.state((net_D, net_G, run.trainers))\n"
              "print('placement', sorted({str(device) for leaf in jax.tree.leaves(states)\n"
              "                           for device in leaf.devices()}))\n")


def run_on_second_device(framework, notebook, tmp_path, monkeypatch):
    notebook.cells.insert(0, nbformat.v4.new_code_cell(SECOND_DEVICE[framework][0]))
    if framework == "jax":
        notebook.cells.append(nbformat.v4.new_code_cell(JAX_REPORT))
    monkeypatch.setenv("D2L_PROFILE", "quick")
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    NotebookClient(notebook, timeout=900, kernel_name=framework,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return "".join(output.get("text", "") for cell in notebook.cells
                   if cell.cell_type == "code" for output in cell.outputs)


@pytest.fixture(params=sorted(SECOND_DEVICE))
def placed(request):
    """(framework, its DCGAN notebook)."""
    path = REPO_ROOT / "build" / "split" / request.param / "dcgan.ipynb"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make build/split/.stamp`", pytrace=False)
    return request.param, nbformat.read(path, as_version=4)


def test_tab_trains_on_the_device_try_gpu_names(placed, tmp_path, monkeypatch):
    framework, notebook = placed
    printed = run_on_second_device(framework, notebook, tmp_path, monkeypatch)
    assert SECOND_DEVICE[framework][2] in printed


def test_a_missing_placement_fails(placed, tmp_path, monkeypatch):
    framework, notebook = placed
    _, placement, _, error = SECOND_DEVICE[framework]
    train_cells = [cell for cell in notebook.cells
                   if cell.cell_type == "code" and "def train(" in cell.source]
    assert len(train_cells) == 1 and train_cells[0].source.count(placement) == 1
    train_cells[0].source = train_cells[0].source.replace(placement, "pass" if framework == "jax" else "")
    with pytest.raises(CellExecutionError, match=error):
        run_on_second_device(framework, notebook, tmp_path, monkeypatch)
