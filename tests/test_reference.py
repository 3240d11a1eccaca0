"""Tests for tools.reference: storing, injecting and checking nbval reference outputs."""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tools.nbsplit import split_chapter, write_notebooks
from tools.reference import (
    MissingReferenceError,
    ReferenceOutputError,
    StaleReferenceError,
    extract_reference,
    format_reference,
    inject_reference,
    load_reference,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

DATA = Path(__file__).resolve().parent / "data"
THREE_FRAMEWORKS = DATA / "three_frameworks.md"
CHECKED_SOURCE = 'print(math.sqrt(4))\nprint("second line")'
TAG = {"tags": ["nbval-check-output"]}


def stream(text, name="stdout"):
    return nbformat.v4.new_output("stream", name=name, text=text)


def code_cell(source, outputs=(), execution_count=None, tagged=True):
    """Build a code cell as nbclient leaves it after running."""
    cell = nbformat.v4.new_code_cell(source=source, metadata=dict(TAG) if tagged else {})
    cell.outputs = list(outputs)
    cell.execution_count = execution_count
    return cell


def notebook(*cells, kernel_name="python3"):
    kernelspec = {"name": kernel_name, "display_name": "Python 3", "language": "python"}
    return nbformat.v4.new_notebook(cells=list(cells), metadata={"kernelspec": kernelspec})


def executed_pytorch_chapter():
    """The pytorch notebook of the sample chapter, as if run by nbclient."""
    executed = split_chapter(THREE_FRAMEWORKS)["pytorch"]
    for count, cell in enumerate((c for c in executed.cells if c.cell_type == "code"), start=1):
        cell.execution_count = count
        if cell.source == CHECKED_SOURCE:
            cell.outputs = [stream("2.0\n"), stream("second line\n")]
    return executed


def tagged_cells(nb):
    return [cell for cell in nb.cells if "nbval-check-output" in cell.metadata.get("tags", [])]


def run_module(module, *arguments):
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, arguments)],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- extract --------------------------------------------------------------------


def test_extract_keeps_text_of_tagged_cells_only():
    executed = notebook(
        code_cell("import math", [stream("ignored\n")], 1, tagged=False),
        code_cell(
            "print(1)\nmath.pi",
            [
                stream("1"),
                stream("\n"),
                nbformat.v4.new_output(
                    "execute_result", data={"text/plain": "3.14", "image/png": "iVBOR"}, execution_count=2
                ),
            ],
            2,
        ),
        code_cell(
            "show()",
            [stream("careful\n", name="stderr"), nbformat.v4.new_output("display_data",
                                                                        data={"image/png": "iVBOR"})],
            3,
        ),
    )
    assert extract_reference(executed) == [
        {
            "source": "print(1)\nmath.pi",
            "outputs": [
                {"output_type": "stream", "name": "stdout", "text": "1\n"},
                {"output_type": "execute_result", "data": {"text/plain": "3.14"}, "metadata": {}},
            ],
        },
        {"source": "show()", "outputs": [{"output_type": "stream", "name": "stderr", "text": "careful\n"}]},
    ]


def test_extract_refuses_rich_output_that_nbval_would_compare():
    executed = notebook(
        code_cell("df", [nbformat.v4.new_output("execute_result", data={"text/plain": "t",
                                                                        "text/html": "<t>"})], 1)
    )
    with pytest.raises(ReferenceOutputError, match="text/html"):
        extract_reference(executed)


def test_extract_refuses_errors_and_unexecuted_cells():
    failed = notebook(code_cell("1/0", [nbformat.v4.new_output("error", ename="ZeroDivisionError",
                                                               evalue="", traceback=[])], 1))
    with pytest.raises(ReferenceOutputError, match="'error' output"):
        extract_reference(failed)
    with pytest.raises(ReferenceOutputError, match="was not executed"):
        extract_reference(notebook(code_cell("print(2)")))


# --- inject ---------------------------------------------------------------------


def test_inject_extract_round_trip():
    reference = extract_reference(executed_pytorch_chapter())
    assert reference == [
        {
            "source": CHECKED_SOURCE,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "2.0\nsecond line\n"}],
        }
    ]
    fresh = split_chapter(THREE_FRAMEWORKS)["pytorch"]
    filled = inject_reference(fresh, reference)
    nbformat.validate(filled)
    (checked,) = tagged_cells(filled)
    assert checked.outputs == [stream("2.0\nsecond line\n")]
    # nbval skips (lax) or fails ("Unrun reference cell has outputs") cells that
    # look unexecuted, so the injected cell needs an execution count.
    assert checked.execution_count is not None
    assert extract_reference(filled) == reference
    # The split notebook passed in is left as it was.
    assert tagged_cells(fresh)[0].outputs == []


def test_injected_execute_result_is_schema_valid():
    stored = [{"source": "x", "outputs": [{"output_type": "execute_result", "data": {"text/plain": "4"},
                                           "metadata": {}}]}]
    filled = inject_reference(notebook(code_cell("y = 1", tagged=False), code_cell("x")), stored)
    nbformat.validate(filled)
    result = filled.cells[1].outputs[0]
    assert result.execution_count == filled.cells[1].execution_count == 2


def test_changed_cell_source_is_reported_as_stale():
    reference = extract_reference(executed_pytorch_chapter())
    reference[0]["source"] = "print(math.sqrt(9))"
    with pytest.raises(StaleReferenceError) as raised:
        inject_reference(split_chapter(THREE_FRAMEWORKS)["pytorch"], reference, origin="ref/pytorch.json")
    message = str(raised.value)
    assert "ref/pytorch.json is stale" in message
    assert "'print(math.sqrt(4))'" in message
    assert "make reference" in message


def test_tagged_cell_without_stored_output_is_reported_as_stale():
    with pytest.raises(StaleReferenceError,
                       match=r"'print\(math.sqrt\(4\)\)' is tagged .* no stored outputs.*make reference"):
        inject_reference(split_chapter(THREE_FRAMEWORKS)["pytorch"], [])


def test_stored_output_without_tagged_cell_is_reported_as_stale():
    reference = extract_reference(executed_pytorch_chapter())
    reference.append({"source": "print(net)\nmore", "outputs": []})
    with pytest.raises(StaleReferenceError,
                       match=r"stored cell starting 'print\(net\)' matches no cell.*make reference"):
        inject_reference(split_chapter(THREE_FRAMEWORKS)["pytorch"], reference)


def test_load_reference_rejects_malformed_files(tmp_path):
    path = tmp_path / "pytorch.json"
    path.write_text('[{"source": "x"}]\n', encoding="utf-8")
    with pytest.raises(ReferenceOutputError, match="entry 0"):
        load_reference(path)
    path.write_text("not json", encoding="utf-8")
    with pytest.raises(ReferenceOutputError, match="not valid JSON"):
        load_reference(path)


# --- nbsplit --reference ----------------------------------------------------------


def store(reference_dir, framework, reference):
    path = reference_dir / "three_frameworks" / f"{framework}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_reference(reference), encoding="utf-8")
    return path


def test_split_with_reference_injects_stored_outputs(tmp_path):
    store(tmp_path / "ref", "pytorch", extract_reference(executed_pytorch_chapter()))
    paths = write_notebooks(THREE_FRAMEWORKS, tmp_path / "out", ("mxnet", "pytorch"),
                            reference_dir=tmp_path / "ref")
    (checked,) = tagged_cells(nbformat.read(paths["pytorch"], as_version=4))
    assert checked.outputs[0].text == "2.0\nsecond line\n"
    # mxnet has no tagged cell, so it needs no reference file.
    assert paths["mxnet"].is_file()


def test_split_with_reference_but_no_file_tells_how_to_create_it(tmp_path):
    with pytest.raises(MissingReferenceError) as raised:
        write_notebooks(THREE_FRAMEWORKS, tmp_path / "out", ("tensorflow",), reference_dir=tmp_path / "ref")
    message = str(raised.value)
    assert str(tmp_path / "ref" / "three_frameworks" / "tensorflow.json") in message
    assert ("python -m tools.reference update "
            "build/notebooks-executed/tensorflow/three_frameworks.ipynb") in message


def test_nbsplit_cli_reports_stale_reference(tmp_path):
    reference = extract_reference(executed_pytorch_chapter())
    reference[0]["source"] = "print(0)"
    store(tmp_path / "ref", "pytorch", reference)
    result = run_module(
        "tools.nbsplit", THREE_FRAMEWORKS, "--out", tmp_path / "out", "--frameworks", "pytorch",
            "--reference", tmp_path / "ref"
    )
    assert result.returncode == 2
    assert "make reference" in result.stderr
    assert "Traceback" not in result.stderr


# --- reference CLI ------------------------------------------------------------------


def test_update_cli_writes_sorted_pretty_json(tmp_path):
    executed_path = tmp_path / "notebooks-executed" / "pytorch" / "three_frameworks.ipynb"
    executed_path.parent.mkdir(parents=True)
    nbformat.write(executed_pytorch_chapter(), executed_path)

    result = run_module("tools.reference", "update", executed_path, "--out", tmp_path / "ref")
    assert result.returncode == 0, result.stderr
    stored = tmp_path / "ref" / "three_frameworks" / "pytorch.json"
    text = stored.read_text(encoding="utf-8")
    assert text.endswith("]\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    assert json.loads(text) == extract_reference(executed_pytorch_chapter())

    again = run_module("tools.reference", "update", executed_path, "--out", tmp_path / "ref")
    assert again.returncode == 0
    assert again.stdout.startswith("unchanged")


def test_update_cli_needs_a_framework_folder(tmp_path):
    executed_path = tmp_path / "three_frameworks.ipynb"
    nbformat.write(executed_pytorch_chapter(), executed_path)
    result = run_module("tools.reference", "update", executed_path, "--out", tmp_path / "ref")
    assert result.returncode == 2
    assert "--framework" in result.stderr
    assert not (tmp_path / "ref").exists()


# --- nbval end to end -------------------------------------------------------------


def run_nbval(notebook_path, *options, environment=None):
    """Run nbval in lax mode on one notebook in a fresh pytest process."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
         f"--rootdir={notebook_path.parent}", *options, str(notebook_path)],
        cwd=notebook_path.parent,
        env=environment or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )


def notebook_checking_print(tmp_path, expected_text, kernel_name="python3"):
    """Write a notebook whose one checked cell prints 2, with ``expected_text`` stored."""
    split = notebook(code_cell("print(1+1)"), kernel_name=kernel_name)
    stored = [{"source": "print(1+1)", "outputs": [{"output_type": "stream", "name": "stdout",
                                                    "text": expected_text}]}]
    path = tmp_path / "check.ipynb"
    nbformat.write(inject_reference(split, stored), path)
    return path


def test_nbval_fails_on_wrong_reference_and_passes_on_right_one(tmp_path):
    wrong = run_nbval(notebook_checking_print(tmp_path, "3\n"), "--nbval-kernel-name", "python3")
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "Cell outputs differ" in wrong.stdout

    right = run_nbval(notebook_checking_print(tmp_path, "2\n"), "--nbval-kernel-name", "python3")
    assert right.returncode == 0, right.stdout + right.stderr
    assert "1 passed" in right.stdout


def test_nbval_starts_the_kernel_named_in_the_notebook(tmp_path):
    # Without --nbval-kernel-name / --nbval-current-env, nbval looks up
    # metadata.kernelspec.name among the installed kernelspecs. Install a
    # kernelspec under a made-up name on JUPYTER_PATH, as the Makefile installs
    # "mxnet", "pytorch" and "tensorflow" into envs/tools.
    kernel_name = "nbsplit-test-kernel"
    kernel_dir = tmp_path / "jupyter" / "kernels" / kernel_name
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "test kernel",
                "language": "python",
            }
        ),
        encoding="utf-8",
    )
    notebook_path = notebook_checking_print(tmp_path, "2\n", kernel_name=kernel_name)

    without_spec = run_nbval(notebook_path)
    assert without_spec.returncode != 0
    assert "No such kernel" in without_spec.stdout + without_spec.stderr

    with_spec = run_nbval(notebook_path, environment=dict(os.environ, JUPYTER_PATH=str(tmp_path / "jupyter")))
    assert with_spec.returncode == 0, with_spec.stdout + with_spec.stderr
