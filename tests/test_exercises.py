"""The DCGAN chapter's exercise switches, flipped and run in every framework.

Exercises 1 and 2 of ``chapters/dcgan.md`` each come with a cell tagged
``exercise-switch`` that the reader edits: ``D_block.alpha = 0.2`` (0 gives
the discriminator plain ReLUs) and ``use_fashion_mnist = False`` (True trains
on Fashion-MNIST). Each test takes a framework's split notebook, flips one
switch, runs the notebook in that framework's kernel in the quick profile,
cut to one epoch, and appends a cell that reports from inside the kernel what
the run really used; the test then checks that report.

Fashion-MNIST is not downloaded: the test writes four small archives in the
IDX format of the real ones (as ``test_fashion_mnist.py`` does), and a first
cell points the kernel's data hub at them through ``file://`` URLs, with a
data folder of its own.

Like ``test_placement.py`` this is a tooling test (nbclient lives in
envs/tools): ``make test-tools`` runs it for every framework, and
``envs/tools/bin/python -m pytest tests/test_exercises.py --framework pytorch``
for one.
"""
import gzip
import hashlib
import json
import math
import re
import struct
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from d2l_shim import FRAMEWORKS

REPO_ROOT = Path(__file__).resolve().parents[1]
SPLIT_DIR = REPO_ROOT / "build" / "split"
REFERENCE_DIR = REPO_ROOT / "tests" / "reference" / "dcgan"
SWITCH_TAG = "exercise-switch"
REPORT_MARK = "EXERCISE-REPORT "

#: Exercise 1 trains on this many emoji, exercise 2 on the archive below.
EMOJI_IMAGES = 128

#: The Fashion-MNIST test split the test writes: 200 pictures, so that every
#: tenth one held out still fills the chapter's 4 x 5 grid of held-out images.
#: Picture i has the gray value LEFT[i] in its left half and RIGHT[i] in its
#: right half; resizing keeps both exactly at the picture's corners.
FASHION_COUNT = 200
LEFT = [20 + i for i in range(FASHION_COUNT)]
RIGHT = [255 - i for i in range(FASHION_COUNT)]
ARCHIVES = {
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
}

#: Exercise 1, per framework: the first four discriminator blocks, 16 real
#: images where the networks live, and the keyword that asks for inference.
D_BLOCK_PROBES = {
    "mxnet": ("[net_D[i] for i in range(4)]",
              "X_all[:16].as_in_ctx(d2l.try_gpu())", ""),
    "jax": ("net_D.layers[:4]", "X_all[:16]", ""),
    "pytorch": ("list(net_D)[:4]",
                "X_all[:16].to(d2l.try_gpu(), memory_format=torch.channels_last)", ""),
    "tensorflow": ("net_D.layers[:4]", "X_all[:16]", ", training=False"),
}

#: For each block, the smallest value after batch norm (before the
#: activation) and the smallest value the block returns.
D_BLOCK_PROBE = """
blocks = {blocks}
h = {images}
lows = []
for block in blocks:
    before = block.batch_norm(block.conv2d(h){inference})
    h = block(h{inference})
    lows.append([float(d2l.numpy(v).min()) for v in (before, h)])
"""

EXERCISE_1_REPORT = """
report = {'alphas': [float(block.alpha) for block in blocks],
          'lows': lows, 'history': [list(map(float, row))
                                    for row in run.history]}
print(REPORT_MARK + json.dumps(report))
"""

EXERCISE_2_REPORT = """
import numpy as onp

def is_gray(array, axis):
    array = onp.asarray(array)
    first = array.take([0], axis=axis)
    return bool((array == first).all())

batch = d2l.numpy(X)  # the first batch, shown in the chapter
report = {
    'data_name': data_name,
    'shape': list(images.shape), 'dtype': str(images.dtype),
    'held_out_shape': list(held_out.shape),
    'gray': is_gray(images, -1) and is_gray(held_out, -1),
    'left': images[:, 0, 0, 0].tolist(),
    'right': images[:, 0, -1, 0].tolist(),
    'held_left': held_out[:, 0, 0, 0].tolist(),
    'held_right': held_out[:, 0, -1, 0].tolist(),
    'batch_shape': list(batch.shape),
    'batch_gray': is_gray(batch, 1 if batch.shape[1] == 3 else -1),
    'trained_on': int(X_all.shape[0]),
    'run_held_out_shape': list(run.held_out.shape),
    'history': [list(map(float, row)) for row in run.history],
}
print(REPORT_MARK + json.dumps(report))
"""


# ------------------------------------------------------------- helpers ----

def split_notebook(framework):
    path = SPLIT_DIR / framework / "dcgan.ipynb"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make build/split/.stamp`",
                    pytrace=False)
    return nbformat.read(path, as_version=4)


def switch_index(notebook, name):
    """The position of the one exercise-switch cell that assigns ``name``."""
    assigns = re.compile(rf"^{re.escape(name)} = ", re.MULTILINE)
    found = [i for i, cell in enumerate(notebook.cells)
             if cell.cell_type == "code"
             and SWITCH_TAG in cell.metadata.get("tags", [])
             and assigns.search(cell.source)]
    assert len(found) == 1, (
        f"expected one cell tagged {SWITCH_TAG!r} assigning {name}, "
        f"found {len(found)}")
    return found[0]


def flip(notebook, name, value):
    """Set the switch ``name`` to ``value`` as a reader would."""
    cell = notebook.cells[switch_index(notebook, name)]
    default = re.search(rf"^{re.escape(name)} = (.*)$", cell.source,
                        re.MULTILINE).group(1)
    assert default.split("#")[0].strip() != value, "the switch is already set"
    cell.source = re.sub(rf"^({re.escape(name)}) = .*$", rf"\g<1> = {value}",
                         cell.source, count=1, flags=re.MULTILINE)


def shorten(notebook, **settings):
    """Override profile settings (one epoch, fewer images) before the data
    is loaded: at the end of exercise 2's switch cell, which comes after the
    profile cell and before the cell that reads the images."""
    index = switch_index(notebook, "use_fashion_mnist")
    for name in settings:
        sets = re.compile(rf"^[\w, ]*\b{name}\b[\w, ]* = ", re.MULTILINE)
        setters = [i for i, cell in enumerate(notebook.cells)
                   if cell.cell_type == "code" and sets.search(cell.source)
                   and i != index]
        assert setters and max(setters) < index, (
            f"{name} must be set by the profile cell, before the switch")
    lines = "".join(f"\n{name} = {value!r}" for name, value in settings.items())
    notebook.cells[index].source += "\n# set by tests/test_exercises.py" + lines


def execute(notebook, framework, tmp_path, monkeypatch, report_code):
    """Run the notebook, in place, with a report cell at the end; return
    the report that cell printed."""
    notebook.cells.append(nbformat.v4.new_code_cell(
        f"import json\nREPORT_MARK = {REPORT_MARK!r}\n" + report_code))
    monkeypatch.setenv("D2L_PROFILE", "quick")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    NotebookClient(notebook, timeout=600, kernel_name=framework,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(output.get("text", "")
                      for output in notebook.cells[-1].outputs)
    reports = [line[len(REPORT_MARK):] for line in printed.splitlines()
               if line.startswith(REPORT_MARK)]
    assert len(reports) == 1, printed
    return json.loads(reports[0])


def parameter_lines(outputs_per_cell):
    return [line for outputs in outputs_per_cell for output in outputs
            for line in "".join(output.get("text", "")).splitlines()
            if "trainable parameters" in line]


def assert_same_parameter_counts(notebook, framework):
    """The tagged cells print the parameter counts stored in tests/reference."""
    stored = json.loads((REFERENCE_DIR / f"{framework}.json").read_text())
    expected = parameter_lines(entry["outputs"] for entry in stored)
    got = parameter_lines(cell.outputs for cell in notebook.cells
                          if "nbval-check-output" in cell.metadata.get("tags", []))
    assert len(expected) == 2 and got == expected


def assert_trained(history, num_epochs=1):
    """Row 0 is the untrained generator; each epoch adds finite losses and SWD."""
    assert len(history) == num_epochs + 1
    assert math.isfinite(history[0][2])
    for row in history[1:]:
        assert all(math.isfinite(value) for value in row), history


def idx_archive(path, array):
    """``array`` (uint8) as a gzipped IDX file, the format of the real ones."""
    header = bytes([0, 0, 0x08, array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes(), mtime=0))
    return path


@pytest.fixture
def fashion_archives(tmp_path):
    """The four archives in a folder, and the hub entries that point at them."""
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    test_images = np.empty((FASHION_COUNT, 28, 28), np.uint8)
    test_images[:, :, :14] = np.array(LEFT, np.uint8)[:, None, None]
    test_images[:, :, 14:] = np.array(RIGHT, np.uint8)[:, None, None]
    labels = (np.arange(FASHION_COUNT) % 10).astype(np.uint8)
    arrays = {"test_images": test_images, "test_labels": labels,
              # a train split of black pictures: loading it would show
              "train_images": np.zeros((10, 28, 28), np.uint8),
              "train_labels": labels[:10]}
    entries = {}
    for key, file_name in ARCHIVES.items():
        path = idx_archive(folder / file_name, arrays[key])
        entries[f"fashion_mnist_{key}"] = (
            path.as_uri(), hashlib.sha1(path.read_bytes()).hexdigest())
    return entries


# --------------------------------------------------------------- tests ----

@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_exercise_1_plain_relu_in_the_discriminator(framework, tmp_path,
                                                    monkeypatch):
    if framework not in D_BLOCK_PROBES:
        pytest.fail(f"no probe of D's blocks for {framework}: add one to "
                    "D_BLOCK_PROBES", pytrace=False)
    blocks, images, inference = D_BLOCK_PROBES[framework]
    probe = D_BLOCK_PROBE.format(blocks=blocks, images=images, inference=inference)
    notebook = split_notebook(framework)
    flip(notebook, "D_block.alpha", "0")
    shorten(notebook, num_epochs=1, num_images=EMOJI_IMAGES)
    report = execute(notebook, framework, tmp_path, monkeypatch,
                     probe + EXERCISE_1_REPORT)

    for before, after in report["lows"]:
        assert before < 0, "batch norm's output has negative values"
        assert after == 0.0, "a plain ReLU passes no negative value"
    assert report["alphas"] == [0.0] * 4
    assert_trained(report["history"])
    assert_same_parameter_counts(notebook, framework)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_exercise_2_fashion_mnist_as_rgb(framework, tmp_path, monkeypatch,
                                         fashion_archives):
    notebook = split_notebook(framework)
    flip(notebook, "use_fashion_mnist", "True")
    shorten(notebook, num_epochs=1)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(
        "from d2l_shim import hub  # the test's archives, not Zalando's\n"
        f"hub.DATA_HUB.update({fashion_archives!r})"))
    monkeypatch.setenv("D2L_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("D2L_DATA_MIRRORS", raising=False)
    report = execute(notebook, framework, tmp_path, monkeypatch,
                     EXERCISE_2_REPORT)

    # Every tenth picture held out, the others all trained on (the quick
    # profile's limit of 512 is above 180), in order, gray in R, G and B.
    held = [i for i in range(FASHION_COUNT) if i % 10 == 0]
    kept = [i for i in range(FASHION_COUNT) if i % 10]
    assert report["data_name"] == "fashion_mnist"
    assert report["shape"] == [len(kept), 64, 64, 3]
    assert report["held_out_shape"] == [len(held), 64, 64, 3]
    assert report["dtype"] == "uint8" and report["gray"]
    assert report["left"] == [LEFT[i] for i in kept]
    assert report["right"] == [RIGHT[i] for i in kept]
    assert report["held_left"] == [LEFT[i] for i in held]
    assert report["held_right"] == [RIGHT[i] for i in held]
    # The networks were trained on them and scored against the held-out ones.
    assert report["trained_on"] == len(kept) and report["batch_gray"]
    assert report["batch_shape"] in ([64, 3, 64, 64], [64, 64, 64, 3])
    assert report["run_held_out_shape"] == [len(held), 64, 64, 3]
    assert_trained(report["history"])
    assert_same_parameter_counts(notebook, framework)
