"""Device placement, proven on a CPU: the MXNet tab runs on the device
``try_gpu()`` names, even when that is not the default one.

MXNet refuses to mix contexts: a network initialized on ``mx.cpu(1)`` rejects
input on ``mx.cpu(0)``. So the DCGAN chapter's MXNet notebook (quick profile)
runs with ``try_gpu()`` returning ``mx.cpu(1)``, and a forgotten
``as_in_ctx(device)`` fails here as it would on a GPU box. A second run with the
``as_in_ctx`` removed from ``train`` shows the check can fail.

(PyTorch and TensorFlow have no such stand-in on a CPU: PyTorch has one CPU
device, and TensorFlow copies tensors between devices by itself.)
"""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "build" / "split" / "mxnet" / "dcgan.ipynb"
SECOND_CPU = ("import mxnet as mx\n"
              "from d2l_shim import mxnet as _shim\n"
              "_shim.try_gpu = lambda i=0: mx.cpu(1)  # stands in for a GPU\n")
PLACEMENT = ".as_in_ctx(device)"


def run_on_second_cpu(notebook, tmp_path, monkeypatch):
    notebook.cells.insert(0, nbformat.v4.new_code_cell(SECOND_CPU))
    monkeypatch.setenv("D2L_PROFILE", "quick")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    NotebookClient(notebook, timeout=900, kernel_name="mxnet",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return "".join(output.get("text", "") for cell in notebook.cells
                   if cell.cell_type == "code" for output in cell.outputs)


@pytest.fixture
def notebook():
    if not NOTEBOOK.exists():
        pytest.fail(f"{NOTEBOOK} is missing: run `make build/split/.stamp`", pytrace=False)
    return nbformat.read(NOTEBOOK, as_version=4)


def test_mxnet_tab_trains_on_the_device_try_gpu_names(notebook, tmp_path, monkeypatch):
    printed = run_on_second_cpu(notebook, tmp_path, monkeypatch)
    assert "examples/sec on cpu(1)" in printed


def test_a_missing_as_in_ctx_fails(notebook, tmp_path, monkeypatch):
    train_cells = [cell for cell in notebook.cells
                   if cell.cell_type == "code" and "def train(" in cell.source]
    assert len(train_cells) == 1 and PLACEMENT in train_cells[0].source
    train_cells[0].source = train_cells[0].source.replace(PLACEMENT, "")
    with pytest.raises(CellExecutionError, match=r"cpu\(1\)"):
        run_on_second_cpu(notebook, tmp_path, monkeypatch)
