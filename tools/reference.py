"""Stored reference outputs for the cells that nbval checks.

A code cell tagged ``nbval-check-output`` prints something deterministic (a tensor
shape, a parameter count). nbval, run with ``--nbval-lax``, compares only those
cells, and compares them against the outputs stored in the notebook it runs. The
split notebooks are generated and carry no outputs, so the expected outputs live in
``tests/reference/<chapter>/<framework>.json`` and are put back into the notebooks
before testing:

* ``extract_reference`` takes them from a notebook executed by nbclient,
* ``inject_reference`` puts them into a freshly split notebook,
* ``python -m tools.reference update EXECUTED.ipynb --out tests/reference`` stores them.

A reference file is a JSON list, in notebook order, with one entry per tagged cell::

    [{"source": "<cell source>", "outputs": [<nbformat output dicts, text only>]}]

Only text is stored: stream outputs, and the ``text/plain`` part of rich outputs.
Execution counts and images are dropped, since nbval ignores both.
"""
import argparse
import copy
import json
import sys
from pathlib import Path

import nbformat

from tools import FRAMEWORKS, write_text_if_changed

#: The cell tag that makes nbval compare a cell's outputs in lax mode.
CHECK_OUTPUT_TAG = "nbval-check-output"

#: Output types whose text can be stored. Errors are never a valid reference.
STORED_OUTPUT_TYPES = ("stream", "execute_result", "display_data")

#: MIME types that nbval 0.11 leaves out of its comparison (see ``skip_compare`` in
#: ``nbval/plugin.py``), so dropping them from the reference changes nothing.
MIME_TYPES_NBVAL_IGNORES = frozenset(
    {"image/png", "image/jpeg", "application/vnd.jupyter.widget-view+json"}
)

REFRESH_HINT = (
    "Check the new outputs, then run `make reference` to refresh the stored outputs."
)


class ReferenceOutputError(ValueError):
    """A reference file or an executed notebook cannot be used as stored outputs."""


class StaleReferenceError(ReferenceOutputError):
    """The stored outputs no longer match the tagged cells of the notebook."""


class MissingReferenceError(ReferenceOutputError):
    """A notebook has tagged cells but no reference file was recorded for it."""


def is_checked_cell(cell):
    """Return True for a code cell whose outputs nbval compares in lax mode."""
    return cell.get("cell_type") == "code" and CHECK_OUTPUT_TAG in cell.get("metadata", {}).get("tags", [])


def first_line(source):
    """Return the first line of a cell source, which is how messages name a cell."""
    return source.split("\n", 1)[0]


def reference_path(reference_dir, chapter, framework):
    """Return where the stored outputs of ``chapter`` for ``framework`` live."""
    return Path(reference_dir) / chapter / f"{framework}.json"


def _joined(text):
    """Return notebook text as one string; raw notebook JSON may split it into lines."""
    return "".join(text) if isinstance(text, list) else text


def _text_only_output(output, cell_label):
    """Reduce one executed output to what the reference stores, or None to drop it.

    Raises ReferenceOutputError for outputs that could never be matched by a
    text-only reference: errors, and rich outputs that nbval would compare in a
    form we do not store (HTML, SVG, LaTeX, ...).
    """
    output_type = output["output_type"]
    if output_type == "stream":
        return {"output_type": "stream", "name": output["name"], "text": _joined(output["text"])}
    if output_type not in STORED_OUTPUT_TYPES:
        raise ReferenceOutputError(
            f"cell {cell_label!r} has a {output_type!r} output; a checked cell must run "
            f"without errors before its outputs can be stored"
        )
    data = output.get("data", {})
    unstorable = sorted(set(data) - {"text/plain"} - MIME_TYPES_NBVAL_IGNORES)
    if unstorable:
        raise ReferenceOutputError(
            f"cell {cell_label!r} displays {', '.join(unstorable)}, which nbval would compare "
            f"but a text-only reference cannot hold; print plain text in cells tagged "
            f"{CHECK_OUTPUT_TAG!r} or remove the tag"
        )
    if "text/plain" not in data:
        return None  # an image alone: nbval compares nothing of it
    return {"output_type": output_type, "data": {"text/plain": _joined(data["text/plain"])}, "metadata": {}}


def _merge_adjacent_streams(outputs):
    """Join consecutive stream outputs of the same name into one.

    How a kernel chunks printed text varies from run to run; merging keeps the
    stored file stable. nbval merges streams itself before comparing, so this loses
    nothing.
    """
    merged = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and output["output_type"] == "stream"
            and previous["output_type"] == "stream"
            and previous["name"] == output["name"]
        ):
            previous["text"] += output["text"]
        else:
            merged.append(output)
    return merged


def extract_reference(executed_nb):
    """Return the stored-output list for the tagged cells of an executed notebook."""
    reference = []
    for cell in executed_nb.cells:
        if not is_checked_cell(cell):
            continue
        source = _joined(cell.source)
        label = first_line(source)
        if cell.get("execution_count") is None:
            # A split notebook that was never run would otherwise yield empty outputs
            # that look like a valid reference.
            raise ReferenceOutputError(
                f"cell {label!r} was not executed; pass the notebook written by the "
                f"executor, not the split one"
            )
        outputs = [_text_only_output(output, label) for output in cell.get("outputs", [])]
        stored = _merge_adjacent_streams([output for output in outputs if output is not None])
        reference.append({"source": source, "outputs": stored})
    return reference


def _stale(origin, detail):
    """Build the error raised when stored outputs no longer fit the notebook."""
    return StaleReferenceError(f"{origin} is stale: {detail}. {REFRESH_HINT}")


def _check_reference_matches(tagged_cells, reference_list, origin):
    """Raise StaleReferenceError unless the reference lists exactly the tagged cells."""
    for cell, entry in zip(tagged_cells, reference_list):
        if cell.source != entry["source"]:
            raise _stale(
                origin,
                f"the cell starting {first_line(cell.source)!r} does not match the stored "
                f"cell starting {first_line(entry['source'])!r}",
            )
    if len(tagged_cells) > len(reference_list):
        extra = tagged_cells[len(reference_list)]
        raise _stale(
            origin,
            f"the cell starting {first_line(extra.source)!r} is tagged {CHECK_OUTPUT_TAG!r} "
            f"but has no stored outputs",
        )
    if len(reference_list) > len(tagged_cells):
        extra = reference_list[len(tagged_cells)]
        raise _stale(
            origin,
            f"the stored cell starting {first_line(extra['source'])!r} matches no cell "
            f"tagged {CHECK_OUTPUT_TAG!r}",
        )


def _notebook_output(stored, execution_count):
    """Turn a stored output back into a schema-valid nbformat output."""
    if stored["output_type"] == "stream":
        return nbformat.v4.new_output("stream", name=stored["name"], text=stored["text"])
    output = nbformat.v4.new_output(stored["output_type"], data=copy.deepcopy(stored["data"]))
    if stored["output_type"] == "execute_result":
        output.execution_count = execution_count
    return output


def inject_reference(nb, reference_list, origin="the stored reference"):
    """Return a copy of ``nb`` whose tagged cells hold the stored outputs.

    ``origin`` names the reference in error messages (usually its file path).
    Raises StaleReferenceError, naming the first cell that disagrees, when the
    tagged cells and the reference differ in number or in source.
    """
    filled = copy.deepcopy(nb)
    tagged_cells = [cell for cell in filled.cells if is_checked_cell(cell)]
    _check_reference_matches(tagged_cells, reference_list, origin)
    code_cells = [cell for cell in filled.cells if cell.cell_type == "code"]
    stored_by_cell = {id(cell): entry for cell, entry in zip(tagged_cells, reference_list)}
    for position, cell in enumerate(code_cells, start=1):
        entry = stored_by_cell.get(id(cell))
        if entry is None:
            continue
        # nbval only compares cells that look executed: with no execution count it
        # fails a cell that has outputs ("Unrun reference cell has outputs").
        cell.execution_count = position
        cell.outputs = [_notebook_output(stored, position) for stored in entry["outputs"]]
    return filled


def _check_reference_structure(reference_list, origin):
    """Raise ReferenceOutputError unless the loaded JSON has the documented shape."""
    if not isinstance(reference_list, list):
        raise ReferenceOutputError(f"{origin}: expected a JSON list of cells")
    for index, entry in enumerate(reference_list):
        well_formed = (
            isinstance(entry, dict)
            and isinstance(entry.get("source"), str)
            and isinstance(entry.get("outputs"), list)
            and all(
                isinstance(output, dict) and output.get("output_type") in STORED_OUTPUT_TYPES
                for output in entry["outputs"]
            )
        )
        if not well_formed:
            raise ReferenceOutputError(
                f"{origin}: entry {index} is not {{'source': str, 'outputs': [text outputs]}}"
            )


def load_reference(path):
    """Read and check a reference file."""
    try:
        reference_list = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ReferenceOutputError(f"{path}: not valid JSON ({error})") from None
    _check_reference_structure(reference_list, path)
    return reference_list


def format_reference(reference_list):
    """Serialise a reference list the way it is stored: indented, sorted keys, final newline."""
    return json.dumps(reference_list, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def update_reference_file(executed_path, reference_dir, framework=None):
    """Store the outputs of an executed notebook; return (path, whether it changed).

    The chapter is the notebook's file name and the framework its folder name
    (``build/notebooks-executed/<framework>/<chapter>.ipynb``) unless given.
    """
    executed_path = Path(executed_path)
    framework = framework or executed_path.parent.name
    if framework not in FRAMEWORKS:
        raise ReferenceOutputError(
            f"{executed_path}: cannot tell the framework from folder {framework!r}; expected "
            f"<framework>/<chapter>.ipynb with framework one of {', '.join(FRAMEWORKS)}, "
            f"or pass --framework"
        )
    executed_nb = nbformat.read(executed_path, as_version=4)
    try:
        reference_list = extract_reference(executed_nb)
    except ReferenceOutputError as error:
        raise ReferenceOutputError(f"{executed_path}: {error}") from None
    target = reference_path(reference_dir, executed_path.stem, framework)
    changed = write_text_if_changed(target, format_reference(reference_list))
    return target, changed


def _argument_parser():
    """Describe the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.reference", description="Manage the stored outputs that nbval checks."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    update = commands.add_parser(
        "update", help="store the outputs of executed notebooks as the new reference"
    )
    update.add_argument(
        "notebooks", nargs="+", type=Path, help="executed notebooks, <framework>/<chapter>.ipynb"
    )
    update.add_argument("--out", required=True, type=Path, help="reference folder, e.g. tests/reference")
    update.add_argument("--framework", choices=FRAMEWORKS,
                        help="framework, if not the notebook's folder name")
    return parser


def main(argv=None):
    """Run the command line; return the exit status."""
    arguments = _argument_parser().parse_args(argv)
    try:
        for notebook in arguments.notebooks:
            target, changed = update_reference_file(notebook, arguments.out, arguments.framework)
            print(f"{'wrote' if changed else 'unchanged'} {target}")
    except (ReferenceOutputError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
