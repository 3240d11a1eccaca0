"""Sphinx extension of the book (``extensions = [..., "tools.book_sphinx"]`` in book/conf.py).

Two things the stock extensions do not do:

* Framework tab sets. tools.build_book writes each framework's copy of a code
  cell, with its own outputs, into the merged notebook and marks it with cell
  metadata ``book_tab = {"set": n, "framework": name}``. MyST-NB renders every
  cell (code and outputs) as usual; the transform below then gathers the cells
  of each set into a sphinx-design tab set, one tab per framework, synced across
  the page under the group ``framework``. sphinx-design's own JavaScript keeps
  the choice in the browser's localStorage, so it holds across pages and reloads.
* Pending cross-references. A ``{ref}`` or ``{numref}`` to a label that no
  chapter defines yet (a section still to be written) renders as plain text
  instead of failing the build, which runs with warnings as errors.
"""
import hashlib
from pathlib import Path

from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx.util import logging
from sphinx_design.shared import create_component

from tools import FRAMEWORKS
from tools.build_book import DEFAULT_FRAMEWORK, FRAMEWORK_LABELS, TAB_METADATA_KEY

#: sphinx-design sync group of the framework tabs; its localStorage key is
#: "sphinx-design-tab-id-framework".
SYNC_GROUP = "framework"

#: Classes that the browser test (and the style sheet) use to find things.
TAB_CELL_CLASS = "book-tab-cell"
NO_CODE_CLASS = "book-no-code"
PENDING_REFERENCE_CLASS = "book-pending-ref"

logger = logging.getLogger(__name__)


def tab_metadata(node):
    """Return the book_tab metadata of a MyST-NB code cell container, or None."""
    if not isinstance(node, nodes.container) or node.get("nb_element") != "cell_code":
        return None
    return (node.get("cell_metadata") or {}).get(TAB_METADATA_KEY)


def tab_cell_groups(document):
    """Return the tabbed code cells of a document, grouped by tab set, in document order."""
    groups = {}
    for node in document.findall(nodes.container):
        metadata = tab_metadata(node)
        if metadata is not None:
            groups.setdefault(metadata["set"], []).append(node)
    return list(groups.values())


def framework_tab(framework, cells):
    """Return one sphinx-design tab item holding a framework's cells (or a note that it has none)."""
    label = nodes.rubric(FRAMEWORK_LABELS[framework], FRAMEWORK_LABELS[framework], classes=["sd-tab-label"])
    label["sync_id"] = framework
    label["sync_group"] = SYNC_GROUP
    if cells:
        for cell in cells:
            cell["classes"] += [TAB_CELL_CLASS, f"framework-{framework}"]
        body = list(cells)
    else:
        text = f"This step has no {FRAMEWORK_LABELS[framework]} code."
        body = [nodes.paragraph(text, text, classes=[NO_CODE_CLASS, f"framework-{framework}"])]
    content = create_component("tab-content", classes=["sd-tab-content"], children=body)
    return create_component(
        "tab-item",
        classes=["sd-tab-item"],
        selected=(framework == DEFAULT_FRAMEWORK),
        children=[label, content],
    )


def framework_tab_set(cells):
    """Return a tab set with one tab per framework, in the book's order, for a group of cells."""
    items = [
        framework_tab(framework, [cell for cell in cells if tab_metadata(cell)["framework"] == framework])
        for framework in FRAMEWORKS
    ]
    tab_set = create_component("tab-set", classes=["sd-tab-set", "book-framework-tabs"], children=items)
    tab_set.source, tab_set.line = cells[0].source, cells[0].line
    return tab_set


class FrameworkTabSets(SphinxTransform):
    """Wrap the tabbed notebook cells of each set into one sphinx-design tab set."""

    # After MyST-NB has built the cell containers (at parse time), long before
    # sphinx-design's post-transform turns tab sets into HTML inputs and labels.
    default_priority = 500

    def apply(self, **kwargs):
        for cells in tab_cell_groups(self.document):
            parent = cells[0].parent
            if any(cell.parent is not parent for cell in cells):
                logger.warning(
                    "the cells of one framework tab set are split by a heading; "
                    "they stay where they are, without tabs",
                    location=cells[0],
                )
                continue
            tab_set = framework_tab_set(cells)
            parent.insert(parent.index(cells[0]), tab_set)
            for cell in cells:
                parent.remove(cell)


def pending_reference_text(target, shown):
    """Return the plain text that stands for a reference to a label that does not exist yet."""
    # A numref title such as "Section %s" has no number to fill in yet.
    return shown.replace("%s", target).replace("{number}", target).replace("{name}", target)


def pending_reference(app, env, node, contnode):
    """missing-reference handler: a {ref}/{numref} to an undefined label becomes plain text."""
    if node.get("refdomain") != "std" or node.get("reftype") not in {"ref", "numref"}:
        return None
    target = node["reftarget"]
    std = env.get_domain("std")
    if target in std.labels or target in std.anonlabels:
        return None  # the label exists: any problem with it is a real error
    text = pending_reference_text(target, contnode.astext())
    logger.info(f"reference to {target!r} shown as plain text: no such label in the book yet", location=node)
    return nodes.inline(text, text, classes=[PENDING_REFERENCE_CLASS])


def source_version():
    """A number that changes whenever this file or tools/build_book.py changes."""
    digest = hashlib.sha256()
    for path in (Path(__file__), Path(__file__).with_name("build_book.py")):
        digest.update(path.read_bytes())
    return int(digest.hexdigest()[:12], 16)


def setup(app):
    """Register the transform and the reference handler."""
    app.setup_extension("sphinx_design")
    app.add_transform(FrameworkTabSets)
    app.connect("missing-reference", pending_reference)
    # The tab sets are made when a page is read, and Sphinx re-reads only pages
    # whose source changed; a new env_version makes it re-read every page after
    # an edit of this extension.
    return {
        "version": "1",
        "env_version": source_version(),
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
