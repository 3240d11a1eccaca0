"""Split a multi-framework chapter into one plain notebook per framework.

A chapter is a Jupytext Markdown file. Every code cell opens with a tab line naming
the frameworks it belongs to::

    #@tab all
    #@tab pytorch
    #@tab mxnet, tensorflow

Markdown cells belong to every framework. For each framework the split keeps the
shared cells and that framework's code cells, drops the tab line, and writes a
plain notebook (no Jupytext metadata) whose kernel is named after the framework.

Usage::

    python -m tools.nbsplit chapters/dcgan.md --out build/notebooks \\
        [--reference tests/reference] [--frameworks pytorch,tensorflow]

Mistakes in a chapter raise ChapterError with the file and line of the cell; the
command line prints that message and exits with status 2.
"""
import argparse
import io
import re
import sys
from pathlib import Path

import jupytext
import nbformat
from jupytext.cell_reader import MarkdownCellReader
from jupytext.stringparser import StringParser

import d2l_shim
from tools import FRAMEWORKS, write_text_if_changed
from tools import reference as stored_reference

#: The tab name that puts a code cell in every framework's notebook.
ALL_FRAMEWORKS_TAB = "all"

ALLOWED_TAB_NAMES = (ALL_FRAMEWORKS_TAB, *FRAMEWORKS)

#: Cell metadata that Jupytext adds for its own round trip and that means nothing
#: in a plain notebook. Other cell metadata, such as tags, is the author's and stays.
JUPYTEXT_CELL_METADATA = frozenset(
    {
        "cell_marker",
        "language",
        "lines_to_end_of_cell_marker",
        "lines_to_next_cell",
        "noskipline",
        "region_name",
        "skipline",
    }
)

_TAB_LINE = re.compile(r"#@tab(?:\s+(?P<names>.*))?")

# The scanner below must find exactly the fences that Jupytext reads as code cells.
# It therefore borrows Jupytext's own patterns: a code cell opens with ``` plus a
# language Jupytext knows (python, bash, R, ... but not text, not "Python", not
# {python}); other ``` fences are listings inside Markdown cells, and HTML-comment
# regions (<!-- #region -->, #md, #raw) are never code.
_CODE_CELL_START = MarkdownCellReader.start_code_re
_REGION_START = MarkdownCellReader.start_region_re
_LISTING_END = re.compile(r"^```\s*$")
_NOEVAL_OPTION = re.compile(r"(?:^|\s)\.noeval(?:\s|$)")


class ChapterError(ValueError):
    """A chapter cannot be split: a bad tab line or a framework without code."""


class _TabProblem(ValueError):
    """What is wrong with a tab line; split_chapter adds the file and line."""


def parse_tab_line(line):
    """Return the frameworks named by a ``#@tab`` line as a frozenset.

    ``#@tab all`` names every framework. Raises _TabProblem when the line is not
    a tab line, names nothing, or names something other than a framework or ``all``.
    """
    match = _TAB_LINE.fullmatch(line.strip())
    if match is None:
        shown = "the cell is empty" if not line.strip() else f"its first line is {line!r}"
        raise _TabProblem(f"code cell does not start with a '#@tab' line ({shown})")
    names = [name.strip() for name in (match["names"] or "").split(",")]
    if names == [""]:
        raise _TabProblem(f"tab line {line!r} names no framework")
    for name in names:
        if not name:
            raise _TabProblem(f"empty name in tab line {line!r}")
        if name not in ALLOWED_TAB_NAMES:
            raise _TabProblem(f"unknown tab name {name!r} in {line!r}")
    if ALL_FRAMEWORKS_TAB in names:
        return frozenset(FRAMEWORKS)
    return frozenset(names)


def _end_of_code_cell(lines, start, closing_fence, language):
    """Return the index of the line that closes the code cell opened at ``start``.

    Like Jupytext, a closing fence inside a multi-line string does not count.
    """
    strings = StringParser(language)
    for index in range(start + 1, len(lines)):
        line = lines[index]
        if strings.is_quoted():
            strings.read_line(line)
            continue
        strings.read_line(line)
        if line.startswith(closing_fence):
            return index
    return len(lines)


def _first_match(lines, start, pattern):
    """Return the index of the first line after ``start`` matching ``pattern``, or len(lines)."""
    for index in range(start + 1, len(lines)):
        if pattern.match(lines[index]):
            return index
    return len(lines)


def code_cell_fence_lines(markdown_text):
    """Return the 1-based line numbers of the fences that Jupytext reads as code cells."""
    lines = markdown_text.splitlines()  # split as Jupytext splits
    fence_lines = []
    index = 0
    while index < len(lines):
        line = lines[index]
        region = _REGION_START.match(line)
        code_start = _CODE_CELL_START.match(line)
        if region:
            region_end = re.compile(rf"^<!--\s*#end{region.group(1)}\s*-->\s*$")
            index = _first_match(lines, index, region_end)
        elif code_start:
            extra_backticks, _space, language, options = code_start.groups()
            closing_fence = "```" + extra_backticks
            if _NOEVAL_OPTION.search(options):
                # Jupytext shows ```python .noeval blocks as Markdown.
                index = _first_match(lines, index, re.compile(re.escape(closing_fence)))
            else:
                fence_lines.append(index + 1)
                index = _end_of_code_cell(lines, index, closing_fence, language)
        elif line.startswith("```"):
            index = _first_match(lines, index, _LISTING_END)
        index += 1
    return fence_lines


def _cell_location(md_path, code_cell_index, code_cell_count):
    """Return 'path:line' for the n-th code cell of a chapter.

    If the scan and Jupytext ever disagree on the number of code cells, the line
    would be a guess, so the cell is named by its position instead.
    """
    fence_lines = code_cell_fence_lines(Path(md_path).read_text(encoding="utf-8"))
    if len(fence_lines) == code_cell_count:
        return f"{md_path}:{fence_lines[code_cell_index]}"
    return f"{md_path}: code cell {code_cell_index + 1} (line unknown)"


def _tabs_of_cells(cells, md_path):
    """Return, per cell, the frameworks of a code cell or None for a shared cell."""
    code_cell_count = sum(cell.cell_type == "code" for cell in cells)
    tabs = []
    code_cell_index = 0
    for cell in cells:
        if cell.cell_type != "code":
            tabs.append(None)
            continue
        try:
            tabs.append(parse_tab_line(cell.source.split("\n", 1)[0]))
        except _TabProblem as problem:
            location = _cell_location(md_path, code_cell_index, code_cell_count)
            raise ChapterError(
                f"{location}: {problem}. Start every code cell with '#@tab all' or "
                f"'#@tab <names>'; allowed names: {', '.join(ALLOWED_TAB_NAMES)}"
            ) from None
        code_cell_index += 1
    return tabs


def _plain_metadata(metadata):
    """Return cell metadata without the keys Jupytext keeps for itself."""
    return {key: value for key, value in metadata.items() if key not in JUPYTEXT_CELL_METADATA}


def _notebook_cell(cell, position):
    """Copy one chapter cell into a plain notebook cell with a position-based id."""
    # Ids from the position in the chapter are stable across runs (so files only
    # change when the chapter does) and the same for a shared cell in every notebook.
    cell_id = f"cell-{position}"
    metadata = _plain_metadata(cell.metadata)
    if cell.cell_type == "code":
        source_without_tab = cell.source.split("\n", 1)[1] if "\n" in cell.source else ""
        return nbformat.v4.new_code_cell(source=source_without_tab, metadata=metadata, id=cell_id)
    if cell.cell_type == "raw":
        return nbformat.v4.new_raw_cell(source=cell.source, metadata=metadata, id=cell_id)
    return nbformat.v4.new_markdown_cell(source=cell.source, metadata=metadata, id=cell_id)


def _framework_notebook(cells, tabs, framework):
    """Build the notebook of one framework from the chapter cells and their tabs."""
    kept = [
        _notebook_cell(cell, position)
        for position, (cell, frameworks) in enumerate(zip(cells, tabs))
        if frameworks is None or framework in frameworks
    ]
    display_name = f"Python 3 ({d2l_shim.framework(framework).label})"
    kernelspec = {"name": framework, "display_name": display_name, "language": "python"}
    return nbformat.v4.new_notebook(
        cells=kept, metadata={"kernelspec": kernelspec, "language_info": {"name": "python"}}
    )


def split_chapter(md_path, frameworks=FRAMEWORKS):
    """Return {framework: notebook} for a chapter, for the given frameworks.

    Raises ChapterError for a code cell without a valid tab line, and for a
    requested framework that would get no code cell at all.
    """
    unknown = sorted(set(frameworks) - set(FRAMEWORKS))
    if unknown:
        raise ValueError(f"unknown frameworks {unknown}; choose from {', '.join(FRAMEWORKS)}")
    chapter = jupytext.read(md_path)
    tabs = _tabs_of_cells(chapter.cells, md_path)
    notebooks = {}
    for framework in frameworks:
        notebook = _framework_notebook(chapter.cells, tabs, framework)
        if not any(cell.cell_type == "code" for cell in notebook.cells):
            raise ChapterError(
                f"{md_path}: no code cell for {framework}; tag cells '#@tab {framework}' "
                f"or '#@tab all', or leave {framework} out with --frameworks"
            )
        notebooks[framework] = notebook
    return notebooks


def _with_stored_outputs(notebook, reference_dir, chapter, framework):
    """Put the stored reference outputs into a split notebook, when it needs them."""
    path = stored_reference.reference_path(reference_dir, chapter, framework)
    if path.exists():
        return stored_reference.inject_reference(notebook, stored_reference.load_reference(path),
                                                 origin=str(path))
    if any(stored_reference.is_checked_cell(cell) for cell in notebook.cells):
        raise stored_reference.MissingReferenceError(
            f"{path} does not exist, but the {framework} notebook of {chapter} has cells "
            f"tagged {stored_reference.CHECK_OUTPUT_TAG!r}. Create it with `make reference`, "
            f"which executes the notebook and runs `python -m tools.reference update "
            f"build/notebooks-executed/{framework}/{chapter}.ipynb --out {reference_dir}`; "
            f"check the stored outputs before committing them"
        )
    return notebook


def notebook_text(notebook):
    """Return the exact text ``nbformat.write`` puts in a notebook file."""
    buffer = io.StringIO()
    nbformat.write(notebook, buffer)
    return buffer.getvalue()


def write_notebooks(md_path, out_dir, frameworks=FRAMEWORKS, reference_dir=None):
    """Split a chapter and write ``out_dir/<framework>/<chapter>.ipynb`` for each framework.

    With ``reference_dir``, stored outputs are injected first (see tools.reference).
    Files whose content is unchanged are not touched. Returns {framework: path}.
    """
    chapter = Path(md_path).stem
    notebooks = split_chapter(md_path, frameworks)
    if reference_dir is not None:
        notebooks = {
            framework: _with_stored_outputs(notebook, reference_dir, chapter, framework)
            for framework, notebook in notebooks.items()
        }
    paths = {}
    for framework, notebook in notebooks.items():
        path = Path(out_dir) / framework / f"{chapter}.ipynb"
        write_text_if_changed(path, notebook_text(notebook))
        paths[framework] = path
    return paths


def _framework_list(text):
    """Parse the --frameworks option: names separated by commas."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in FRAMEWORKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma list of {', '.join(FRAMEWORKS)}, got {text!r}"
        )
    return names


def _argument_parser():
    """Describe the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.nbsplit",
        description="Split Jupytext Markdown chapters into one notebook per framework.",
    )
    parser.add_argument("chapters", nargs="+", type=Path, help="chapter files, e.g. chapters/dcgan.md")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder; writes <out>/<framework>/<chapter>.ipynb")
    parser.add_argument("--reference", type=Path,
                        help="folder of stored outputs to inject, e.g. tests/reference")
    parser.add_argument(
        "--frameworks", type=_framework_list, default=FRAMEWORKS, help="comma list, default: all"
    )
    return parser


def main(argv=None):
    """Run the command line; return the exit status."""
    arguments = _argument_parser().parse_args(argv)
    try:
        for chapter in arguments.chapters:
            write_notebooks(chapter, arguments.out, arguments.frameworks, arguments.reference)
    except (ChapterError, stored_reference.ReferenceOutputError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
