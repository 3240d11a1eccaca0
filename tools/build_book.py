"""Merge each chapter's executed notebooks into one tabbed page of the HTML book.

MyST-NB does not execute code cells nested inside tabs, so, as d2lbook does, the
book is built from the notebooks that ``make notebooks`` already executed, one per
framework (``build/notebooks/<framework>/<chapter>.ipynb``, the notebooks the tests
run). Their cells carry the ids that tools.nbsplit gives them, ``cell-<position in
the chapter>``, so the framework notebooks line up cell by cell:

* a Markdown cell (prose) is in every notebook and appears once;
* a run of consecutive framework code cells becomes one tab set, each framework's
  tab holding that framework's code and its own executed outputs;
* a ``#@tab all`` cell whose source and outputs are the same in every framework is
  shown once, outside any tab set; when its outputs differ it joins the tabs.

The result is one merged notebook per chapter plus ``index.md`` in the output
folder, which Sphinx (``-c book``) renders with MyST-NB without executing anything.
The tab sets themselves are made at Sphinx time by tools.book_sphinx from the cell
metadata written here (key ``book_tab``).

Usage::

    python -m tools.build_book chapters/*.md --notebooks build/notebooks \\
        --order book/chapters.txt --front book/index.md --out build/book

Files are written only when their content changes, so Sphinx re-reads only the
chapters whose notebooks changed.
"""
import argparse
import copy
import io
import os
import re
import sys
from pathlib import Path

import nbformat

import d2l_shim
from tools import FRAMEWORKS, write_text_if_changed

#: Tab labels, in tab order (that of ``d2l_shim.TABLE``).
FRAMEWORK_LABELS = {row.name: row.label for row in d2l_shim.TABLE}

#: The tab a first-time reader sees; a click on another tab is remembered.
DEFAULT_FRAMEWORK = "pytorch"

#: Cell metadata key that puts a merged code cell into a framework tab set:
#: ``{"set": <number of the tab set in the page>, "framework": "pytorch"}``.
TAB_METADATA_KEY = "book_tab"

#: Optional cell metadata an author may set in a chapter (```` ```python alt="..." ````)
#: to describe the cell's figure; otherwise the alt text quotes the cell's last line.
ALT_METADATA_KEY = "alt"

_CELL_ID = re.compile(r"cell-(\d+)")
_HEADING = re.compile(r"#{1,6}\s")
_LABEL = re.compile(r"\(([^()\s]+)\)=\s*")


class BookError(ValueError):
    """The executed notebooks of a chapter cannot be merged, or the chapter order is wrong."""


# --- chapter order -------------------------------------------------------------


def read_chapter_order(text):
    """Return the chapter names listed in an order file: one a line, '#' starts a comment."""
    names = []
    for line in text.splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise BookError(f"chapters listed twice in the order file: {', '.join(duplicates)}")
    return names


def ordered_chapters(order, available):
    """Return the available chapter names in book order.

    A chapter in ``order`` that does not exist yet is left out, so the order can name
    chapters that are still being written. A chapter that exists but is not in
    ``order`` is an error: every chapter needs an explicit place in the book.
    """
    unplaced = sorted(set(available) - set(order))
    if unplaced:
        raise BookError(
            f"chapters without a place in the book: {', '.join(unplaced)}; "
            f"add them to the chapter order file (book/chapters.txt)"
        )
    return [name for name in order if name in set(available)]


def book_chapters(order_file, chapters_dir):
    """The chapter names the book holds, in book order (see ``ordered_chapters``)."""
    order = read_chapter_order(Path(order_file).read_text(encoding="utf-8"))
    return ordered_chapters(order, [path.stem for path in Path(chapters_dir).glob("*.md")])


def index_page(front_text, chapter_names):
    """Return the front page: the authored text followed by the numbered table of contents."""
    toctree = "\n".join(["```{toctree}", ":maxdepth: 2", ":numbered:", "", *chapter_names, "```"])
    return f"{front_text.rstrip()}\n\n{toctree}\n"


# --- lining the notebooks up -------------------------------------------------------


def cell_position(cell):
    """Return the position in the chapter that tools.nbsplit encoded in the cell id."""
    match = _CELL_ID.fullmatch(cell.get("id", ""))
    if match is None:
        raise BookError(
            f"cell id {cell.get('id')!r} is not 'cell-<position>': was this notebook "
            f"made by tools.nbsplit?"
        )
    return int(match.group(1))


def visible_outputs(cell):
    """Return the outputs a reader should see: everything but stderr.

    Standard error holds the frameworks' start-up logging (TensorFlow's absl
    lines, for instance), which says nothing about the chapter.
    """
    return [
        output
        for output in cell.get("outputs", [])
        if not (output.output_type == "stream" and output.get("name") == "stderr")
    ]


def _output_signature(output):
    """What makes two outputs look the same to a reader (not metadata or counters)."""
    return (output.output_type, output.get("name"), output.get("text"), output.get("data"))


def same_for_every_framework(cells_by_framework, frameworks=FRAMEWORKS):
    """Whether a code cell exists in every framework with the same source and outputs."""
    if set(cells_by_framework) != set(frameworks):
        return False
    signatures = {
        (cell.source, tuple(repr(_output_signature(output)) for output in visible_outputs(cell)))
        for cell in cells_by_framework.values()
    }
    return len(signatures) == 1


def chapter_slots(notebooks):
    """Line the frameworks' notebooks up by position.

    ``notebooks`` maps each framework to its executed notebook. Returns a list of
    ``(position, cell_type, {framework: cell})`` in chapter order. Prose must be
    the same in every notebook: a difference means that the notebooks come from
    different versions of the chapter.
    """
    slots = {}
    for framework, notebook in notebooks.items():
        for cell in notebook.cells:
            position = cell_position(cell)
            cell_type, cells = slots.setdefault(position, (cell.cell_type, {}))
            if cell.cell_type != cell_type:
                raise BookError(
                    f"cell-{position} is {cell_type} in one notebook and {cell.cell_type} "
                    f"in the {framework} notebook: the notebooks come from different versions of "
                    f"the chapter (run `make notebooks` again)"
                )
            cells[framework] = cell
    for position, (cell_type, cells) in slots.items():
        if cell_type != "code":
            if set(cells) != set(notebooks):
                missing = sorted(set(notebooks) - set(cells))
                raise BookError(f"prose cell-{position} is missing from the {', '.join(missing)} notebook")
            if len({cell.source for cell in cells.values()}) != 1:
                raise BookError(
                    f"prose cell-{position} differs between the frameworks' notebooks: "
                    f"they come from different versions of the chapter (run `make notebooks` again)"
                )
    return [(position, *slots[position]) for position in sorted(slots)]


def page_blocks(slots, frameworks=FRAMEWORKS):
    """Group the slots into what the page shows, in order.

    Returns a list of ``("prose", slot)``, ``("shared", slot)`` (a code cell shown
    once) and ``("tabs", [slot, ...])`` (consecutive code cells shown as one tab set).
    """
    blocks = []
    for slot in slots:
        _position, cell_type, cells = slot
        if cell_type != "code":
            blocks.append(("prose", slot))
        elif same_for_every_framework(cells, frameworks):
            blocks.append(("shared", slot))
        elif blocks and blocks[-1][0] == "tabs":
            blocks[-1][1].append(slot)
        else:
            blocks.append(("tabs", [slot]))
    return blocks


# --- the merged page ---------------------------------------------------------------


def hoist_heading_labels(markdown):
    """Move a MyST label written right under a heading to just above it.

    Chapters follow d2l and put the section label under the title::

        # Deep Convolutional Generative Adversarial Networks
        (sec_dcgan)=

    MyST attaches a label to what follows it, so there it would name the first
    paragraph and ``{ref}`sec_dcgan``` would find no title. Above the heading it
    names the section.
    """
    lines = markdown.split("\n")
    index = 0
    while index < len(lines) - 1:
        if _HEADING.match(lines[index]) and _LABEL.fullmatch(lines[index + 1]):
            lines[index], lines[index + 1] = lines[index + 1], lines[index]
            index += 1
        index += 1
    return "\n".join(lines)


def last_code_line(source):
    """Return the last line of code that is not blank or a comment, without a trailing ';'."""
    for line in reversed(source.splitlines()):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped.rstrip(";").rstrip()
    return "(no code)"


def figure_alt_text(cell, framework=None):
    """Return the alt text of a cell's figures, naming the framework when there is one."""
    description = cell.metadata.get(ALT_METADATA_KEY) or last_code_line(cell.source)
    whose = f"the {FRAMEWORK_LABELS[framework]} cell" if framework else "the cell"
    return f"Figure output of {whose}: {description}"


def has_image(outputs):
    """Whether any output carries an image that the page shows as a figure."""
    return any(
        key.startswith("image/") for output in outputs for key in output.get("data", {})
    )


def book_code_cell(cell, cell_id, framework=None, tab_set=None):
    """Copy an executed code cell for the page: its source, visible outputs and display metadata."""
    outputs = [copy.deepcopy(output) for output in visible_outputs(cell)]
    metadata = {}
    if cell.metadata.get("tags"):
        metadata["tags"] = list(cell.metadata["tags"])
    if has_image(outputs):
        metadata["mystnb"] = {"image": {"alt": figure_alt_text(cell, framework)}}
    if tab_set is not None:
        metadata[TAB_METADATA_KEY] = {"set": tab_set, "framework": framework}
    return nbformat.v4.new_code_cell(
        source=cell.source,
        outputs=outputs,
        execution_count=cell.get("execution_count"),
        metadata=metadata,
        id=cell_id,
    )


def uses_profiles(notebooks):
    """Whether a chapter's code reads the run profile (``d2l.profile_name()``)."""
    return any("profile_name(" in cell.source for notebook in notebooks.values()
               for cell in notebook.cells if cell.cell_type == "code")


def downloads_note(notebook_links, profiles=True):
    """Return the MyST note that offers the framework notebooks and says how to run them on a GPU.

    ``notebook_links`` maps each framework to the path of its executed notebook,
    relative to the page; Sphinx's download role copies the files into the HTML output.
    ``profiles``: whether the chapter has a quick and a full profile to mention.
    """
    profile_lines = [
        "`D2L_PROFILE=full` for the section's full setting; without it the notebook runs",
        "the quick profile, sized for a CPU. The cells place data and models with",
    ] if profiles else [
        "the usual environment; the notebook runs the section's full setting. The cells",
        "place data and models with",
    ]
    links = " · ".join(
        f"{{download}}`{FRAMEWORK_LABELS[framework]} <{path}>`"
        for framework, path in notebook_links.items()
    )
    gpu_environments = ", ".join(f"`{row.gpu_environment}` for {row.label}" for row in d2l_shim.TABLE)
    return "\n".join(
        [
            ":::{admonition} Run this section yourself",
            ":class: tip book-downloads",
            "",
            f"Notebooks of this page, one per framework, with the outputs shown here: {links}.",
            "",
            "On a GPU box: create the framework's environment from its CUDA build",
            f"({gpu_environments}, in the book's repository), install the",
            "book's helpers into it with `pip install -e .` from the repository, and open",
            "the notebook in Jupyter with that environment's kernel. Start Jupyter with",
            *profile_lines,
            "`d2l.try_gpu()`, so they use the GPU unchanged.",
            ":::",
        ]
    )


def insert_after_title(markdown, note):
    """Insert ``note`` after the first top-level heading of ``markdown`` (at the top if none)."""
    lines = markdown.split("\n")
    for index, line in enumerate(lines):
        if line.startswith("# "):
            return "\n".join([*lines[: index + 1], "", note, "", *lines[index + 1 :]])
    return f"{note}\n\n{markdown}"


def book_prose_cell(cell, note=None):
    """Copy a prose cell for the page: labels hoisted, and ``note`` placed under its title."""
    page_cell = copy.deepcopy(cell)
    page_cell.metadata = {}
    page_cell.source = hoist_heading_labels(cell.source)
    if note is not None:
        page_cell.source = insert_after_title(page_cell.source, note)
    return page_cell


def tab_set_cells(slots, number, frameworks=FRAMEWORKS):
    """Return the code cells of tab set ``number``: framework by framework, each in chapter order."""
    return [
        book_code_cell(cells[framework], f"cell-{position}-{framework}", framework=framework, tab_set=number)
        for framework in frameworks
        for position, _cell_type, cells in slots
        if framework in cells
    ]


def has_title(cell):
    """Whether a cell is Markdown holding a top-level heading (the page title)."""
    return cell.cell_type == "markdown" and any(line.startswith("# ") for line in cell.source.split("\n"))


def merge_chapter(notebooks, notebook_links, frameworks=FRAMEWORKS):
    """Return the book page of one chapter as a notebook.

    ``notebooks`` maps each framework to its executed notebook; ``notebook_links``
    maps each framework to the page-relative path offered for download, which a
    note under the page title offers (at the top when there is no title).
    """
    note = downloads_note(notebook_links, profiles=uses_profiles(notebooks))
    cells = []
    tab_sets = 0
    for kind, content in page_blocks(chapter_slots(notebooks), frameworks):
        if kind == "prose":
            _position, _cell_type, by_framework = content
            prose = by_framework[frameworks[0]]
            place_note = note is not None and has_title(prose)
            cells.append(book_prose_cell(prose, note if place_note else None))
            if place_note:
                note = None
        elif kind == "shared":
            position, _cell_type, by_framework = content
            cells.append(book_code_cell(by_framework[frameworks[0]], f"cell-{position}"))
        else:
            tab_sets += 1
            cells.extend(tab_set_cells(content, tab_sets, frameworks))
    if note is not None:
        cells.insert(0, nbformat.v4.new_markdown_cell(note, id="downloads"))
    metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": dict(notebooks[frameworks[0]].metadata.get("language_info", {"name": "python"})),
    }
    return nbformat.v4.new_notebook(cells=cells, metadata=metadata)


# --- files -----------------------------------------------------------------------------


def notebook_text(notebook):
    """Return the text that ``nbformat.write`` puts in a notebook file."""
    buffer = io.StringIO()
    nbformat.write(notebook, buffer)
    return buffer.getvalue()


def executed_notebook_paths(notebooks_dir, chapter, frameworks=FRAMEWORKS):
    """Return {framework: path of the chapter's executed notebook}; raise if one is missing."""
    paths = {framework: Path(notebooks_dir) / framework / f"{chapter}.ipynb" for framework in frameworks}
    missing = [str(path) for path in paths.values() if not path.exists()]
    if missing:
        raise BookError(f"executed notebooks missing: {', '.join(missing)} (run `make notebooks`)")
    return paths


def page_relative_links(paths, page_dir):
    """Return {framework: path relative to the page folder, with forward slashes}."""
    return {
        framework: Path(os.path.relpath(path, page_dir)).as_posix() for framework, path in paths.items()
    }


def remove_stale_pages(out_dir, kept_names):
    """Delete pages that earlier builds wrote for chapters that are no longer in the book."""
    removed = []
    for path in sorted(Path(out_dir).glob("*")):
        if path.suffix in {".ipynb", ".md"} and path.name not in kept_names:
            path.unlink()
            removed.append(path)
    return removed


def build_sources(chapter_paths, notebooks_dir, order_text, front_text, out_dir):
    """Write the book's Sphinx sources: ``index.md`` and one ``<chapter>.ipynb`` per chapter.

    Returns the chapter names in book order.
    """
    out_dir = Path(out_dir)
    chapters = ordered_chapters(read_chapter_order(order_text), [Path(path).stem for path in chapter_paths])
    for chapter in chapters:
        paths = executed_notebook_paths(notebooks_dir, chapter)
        notebooks = {framework: nbformat.read(path, as_version=4) for framework, path in paths.items()}
        try:
            page = merge_chapter(notebooks, page_relative_links(paths, out_dir))
        except BookError as error:
            raise BookError(f"{chapter}: {error}") from None
        write_text_if_changed(out_dir / f"{chapter}.ipynb", notebook_text(page))
    write_text_if_changed(out_dir / "index.md", index_page(front_text, chapters))
    remove_stale_pages(out_dir, {"index.md", *(f"{chapter}.ipynb" for chapter in chapters)})
    return chapters


def _argument_parser():
    """Describe the command line."""
    parser = argparse.ArgumentParser(prog="python -m tools.build_book", description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="+", type=Path, help="chapter files, e.g. chapters/*.md")
    parser.add_argument("--notebooks", required=True, type=Path,
                        help="executed notebooks: <dir>/<framework>/<chapter>.ipynb")
    parser.add_argument("--order", required=True, type=Path,
                        help="the chapter order file, e.g. book/chapters.txt")
    parser.add_argument("--front", required=True, type=Path, help="the front page text, e.g. book/index.md")
    parser.add_argument("--out", required=True, type=Path, help="folder of the generated Sphinx sources")
    return parser


def main(argv=None):
    """Run the command line; return the exit status."""
    arguments = _argument_parser().parse_args(argv)
    try:
        chapters = build_sources(
            arguments.chapters,
            arguments.notebooks,
            arguments.order.read_text(encoding="utf-8"),
            arguments.front.read_text(encoding="utf-8"),
            arguments.out,
        )
    except (BookError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"book pages: {', '.join(chapters)} -> {arguments.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
