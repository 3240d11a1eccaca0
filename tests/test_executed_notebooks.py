"""Every tab of every chapter, checked in the notebooks the book is built from.

``make test-notebooks`` first executes each chapter in each framework's kernel
(``build/notebooks/<framework>/<chapter>.ipynb``, by ``tools.execute``; a cell
that raises stops it there), then runs this file. The book renders the same
notebooks, so every cell runs once per ``make test`` instead of twice.

* Every code cell ran, and none left an error output.
* Cells tagged ``nbval-check-output`` (shapes, parameter counts) print exactly
  what ``tests/reference/<chapter>/<framework>.json`` stores (``make reference``
  refreshes it; the comparison is the text nbval's lax mode compares).
* The DCGAN notebook trained (finite losses, a speed) and scored its samples
  with the sliced Wasserstein distance before and after training.
"""
import json
import math
import re
from pathlib import Path

import nbformat
import pytest

from d2l_shim import FRAMEWORKS
from tools import reference
from tools.build_book import book_chapters

REPO_ROOT = Path(__file__).resolve().parents[1]
EXECUTED = REPO_ROOT / "build" / "notebooks"
REFERENCE_DIR = REPO_ROOT / "tests" / "reference"
SWD_LINE = re.compile(r"SWD x 1e3 to (\d+) held-out images: untrained generator "
                      r"([\d.]+), trained generator ([\d.]+)")
LOSS_LINE = re.compile(r"loss_D (\S+), loss_G (\S+), ([\d.]+) examples/sec on (\S+)")


CHAPTERS = book_chapters(REPO_ROOT / "book" / "chapters.txt", REPO_ROOT / "chapters")


def executed(framework, chapter):
    path = EXECUTED / framework / f"{chapter}.ipynb"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make notebooks` (make test-notebooks "
                    "executes the chapters before this test)", pytrace=False)
    return nbformat.read(path, as_version=4)


def printed_text(notebook):
    """Everything the notebook's cells printed, in order."""
    return "".join(output.get("text", "") for cell in notebook.cells
                   if cell.cell_type == "code" for output in cell.get("outputs", [])
                   if output.get("output_type") == "stream")


@pytest.mark.parametrize("chapter", CHAPTERS)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_cell_ran_without_error(framework, chapter):
    notebook = executed(framework, chapter)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, f"{chapter} has no {framework} code cells"
    for cell in code:
        label = reference.first_line(cell.source)
        assert cell.execution_count is not None, f"cell {label!r} never ran"
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"cell {label!r} raised {errors[0].ename}: {errors[0].evalue}"


@pytest.mark.parametrize("chapter", CHAPTERS)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_checked_cells_print_the_stored_outputs(framework, chapter):
    path = reference.reference_path(REFERENCE_DIR, chapter, framework)
    stored = json.loads(path.read_text(encoding="utf-8"))
    found = reference.extract_reference(executed(framework, chapter))
    assert [entry["source"] for entry in found] == [entry["source"] for entry in stored], (
        f"the cells tagged {reference.CHECK_OUTPUT_TAG!r} changed: {reference.REFRESH_HINT}")
    for entry, expected in zip(found, stored):
        assert entry["outputs"] == expected["outputs"], (
            f"{chapter}/{framework}: cell {reference.first_line(entry['source'])!r} printed "
            f"{entry['outputs']!r}, the reference holds {expected['outputs']!r}. "
            + reference.REFRESH_HINT)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_dcgan_notebook_reports_training_and_the_swd(framework):
    """The run printed finite losses and the SWD before and after training.
    (Whether the SWD falls enough is ``make test-learning``'s question: the
    quick profile is too short to ask it.)"""
    text = printed_text(executed(framework, "dcgan"))
    losses = LOSS_LINE.findall(text)
    assert losses, f"the {framework} dcgan notebook printed no training summary"
    loss_D, loss_G, speed, device = losses[-1]
    assert math.isfinite(float(loss_D)) and math.isfinite(float(loss_G))
    assert float(speed) > 0
    found = SWD_LINE.search(text)
    assert found, f"the {framework} dcgan notebook printed no SWD line"
    held_out, before, after = int(found[1]), float(found[2]), float(found[3])
    assert held_out > 0 and before > 0 and after > 0
    print(f"{framework}: SWD x 1e3 to {held_out} held-out emoji {before} -> {after} "
          f"({after / before - 1:+.0%}); {speed} examples/s on {device}")
