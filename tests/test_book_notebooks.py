"""The notebooks the book is built from: every cell ran, and the DCGAN learned.

``make test-learning`` runs this after ``make book`` executed each chapter once
per framework in the book profile (``--notebooks``, default
``build/book-notebooks/book``). Training runs only there: this file reads what
the runs printed.

* Every code cell ran and none left an error output.
* The DCGAN run printed finite losses, a speed and the device.
* Its SWD summary (``TrainingRun.swd_summary``, in the cell tagged
  ``swd-summary``): the median SWD of the last five epochs to the held-out
  images is at least 30% below the untrained generator's. One epoch's SWD
  swings by up to 20 points at the section's learning rate, which is why the
  judged number is a median over five.
"""
import math
import re
from pathlib import Path

import nbformat
import pytest

from d2l_shim import FRAMEWORKS
from d2l_shim.swd import JUDGED_EPOCHS, parse_summary
from tools import reference
from tools.build_book import book_chapters

REPO_ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = book_chapters(REPO_ROOT / "book" / "chapters.txt", REPO_ROOT / "chapters")
LOSS_LINE = re.compile(r"loss_D (\S+), loss_G (\S+), ([\d.]+) examples/sec on (\S+)")
PROFILE_LINE = re.compile(r"profile (\w+):")
REQUIRED_DROP = 0.30
SUMMARY_TAG = "swd-summary"


@pytest.fixture
def executed(request):
    folder = Path(request.config.getoption("--notebooks"))

    def read(framework, chapter):
        path = folder / framework / f"{chapter}.ipynb"
        if not path.exists():
            pytest.fail(f"{path} is missing: run `make book-notebooks` (make test-learning "
                        "executes the chapters before this test)", pytrace=False)
        return nbformat.read(path, as_version=4)
    return read


def printed(cells):
    """Everything ``cells`` printed, in order."""
    return "".join(output.get("text", "") for cell in cells
                   for output in cell.get("outputs", []) if output.get("output_type") == "stream")


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


@pytest.mark.parametrize("chapter", CHAPTERS)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_cell_ran_without_error(executed, framework, chapter):
    cells = code_cells(executed(framework, chapter))
    assert cells, f"{chapter} has no {framework} code cells"
    for cell in cells:
        label = reference.first_line(cell.source)
        assert cell.execution_count is not None, f"cell {label!r} never ran"
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"cell {label!r} raised {errors[0].ename}: {errors[0].evalue}"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_dcgan_learned(executed, framework):
    notebook = executed(framework, "dcgan")
    text = printed(code_cells(notebook))
    profile = PROFILE_LINE.search(text)
    assert profile, f"the {framework} dcgan notebook printed no profile line"
    losses = LOSS_LINE.findall(text)
    assert losses, f"the {framework} dcgan notebook printed no training summary"
    loss_D, loss_G, speed, device = losses[-1]
    assert math.isfinite(float(loss_D)) and math.isfinite(float(loss_G))
    assert float(speed) > 0
    tagged = [cell for cell in code_cells(notebook) if SUMMARY_TAG in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"expected one cell tagged {SUMMARY_TAG!r}, found {len(tagged)}"
    swd = parse_summary(printed(tagged))
    assert swd, f"the {framework} cell tagged {SUMMARY_TAG!r} printed no SWD summary"
    print(f"\n{framework} ({profile[1]} profile): SWD x 1e3 to {swd['held_out']} held-out "
          f"images, untrained {swd['untrained']}, median of the last {swd['epochs']} epochs "
          f"{swd['trained']} ({swd['change']:+.0%}); {speed} examples/s on {device}")
    assert swd["epochs"] == JUDGED_EPOCHS, (
        f"the {profile[1]} profile trains {swd['epochs']} epochs: judging learning needs "
        f"{JUDGED_EPOCHS} (run the book profile: make book-notebooks)")
    assert swd["trained"] <= (1 - REQUIRED_DROP) * swd["untrained"], (
        f"{framework}: the median SWD of the last {JUDGED_EPOCHS} epochs is {swd['trained']}, "
        f"{swd['change']:+.0%} from the untrained generator's {swd['untrained']}; "
        f"training must lower it by {REQUIRED_DROP:.0%}")
