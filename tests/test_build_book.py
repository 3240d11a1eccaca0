"""Tests for tools.build_book (merging executed notebooks into tabbed pages) and
tools.book_sphinx (the tab sets and pending references, through a real Sphinx build)."""
import base64
import os
import re
import time
from pathlib import Path

import nbformat
import pytest

from d2l_shim import FRAMEWORKS, TABLE
from tools.build_book import (
    TAB_METADATA_KEY,
    BookError,
    book_chapters,
    build_sources,
    hoist_heading_labels,
    index_page,
    last_code_line,
    merge_chapter,
    ordered_chapters,
    read_chapter_order,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

# sphinx-book-theme 1.4 uses an API that Sphinx 11 will remove; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*HandleFootnoteTransform.app.*")

# The smallest valid PNG: one white pixel.
PIXEL_PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d4944415478da63f8ffff3f0005fe02fe0dc7a3a60000000049454e44ae426082"
    )
).decode()


# --- building executed notebooks by hand ----------------------------------------------


def prose(position, source):
    return nbformat.v4.new_markdown_cell(source, id=f"cell-{position}")


def code(position, source, *outputs, **metadata):
    return nbformat.v4.new_code_cell(source, id=f"cell-{position}", outputs=list(outputs), metadata=metadata)


def stdout(text):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def stderr(text):
    return nbformat.v4.new_output("stream", name="stderr", text=text)


def figure():
    return nbformat.v4.new_output("display_data", data={"image/png": PIXEL_PNG, "text/plain": "<Figure>"})


def notebook(*cells, framework="pytorch"):
    return nbformat.v4.new_notebook(
        cells=list(cells),
        metadata={
            "kernelspec": {"name": framework, "display_name": framework, "language": "python"},
            "language_info": {"name": "python", "pygments_lexer": "ipython3"},
        },
    )


def chapter_notebooks(framework_cells, shared_cells=()):
    """{framework: notebook}: each framework's cells plus the shared ones, in position order."""
    return {
        framework: notebook(
            *sorted([*shared_cells, *framework_cells.get(framework, [])], key=lambda cell: position_of(cell)),
            framework=framework,
        )
        for framework in FRAMEWORKS
    }


def position_of(cell):
    return int(cell.id.split("-")[1])


LINKS = {framework: f"../notebooks/{framework}/chapter.ipynb" for framework in FRAMEWORKS}
TITLE = prose(0, "# A Chapter\n(sec_chapter)=\n\nFirst paragraph.")


def tab_of(cell):
    return cell.metadata.get(TAB_METADATA_KEY)


def tabbed(page):
    """[(set, framework, source)] of the page's tabbed code cells, in page order."""
    return [
        (tab_of(cell)["set"], tab_of(cell)["framework"], cell.source)
        for cell in page.cells
        if cell.cell_type == "code" and tab_of(cell)
    ]


# --- merging ---------------------------------------------------------------------------


def test_framework_cells_in_a_row_become_one_tab_set_and_prose_appears_once():
    sources = {"mxnet": "import mxnet", "pytorch": "import torch", "jax": "import jax",
               "tensorflow": "import tensorflow as tf"}
    printed = {"mxnet": "mx\n", "pytorch": "pt\n", "jax": "jax\n", "tensorflow": "tf\n"}
    notebooks = chapter_notebooks(
        {
            framework: [code(position, sources[framework], stdout(printed[framework]))]
            for position, framework in enumerate(FRAMEWORKS, start=1)
        },
        shared_cells=[TITLE, prose(len(FRAMEWORKS) + 1, "Between.")],
    )
    page = merge_chapter(notebooks, LINKS)
    assert [cell.cell_type for cell in page.cells] == ["markdown", *["code"] * len(FRAMEWORKS), "markdown"]
    assert sum("Between." in cell.source for cell in page.cells) == 1
    assert tabbed(page) == [(1, framework, sources[framework]) for framework in FRAMEWORKS]
    # each tab keeps its own framework's output
    outputs = {tab_of(cell)["framework"]: cell.outputs[0].text for cell in page.cells[1:-1]}
    assert outputs == {framework: printed[framework] for framework in FRAMEWORKS}


def test_prose_separates_tab_sets_and_a_framework_may_have_several_cells_in_one():
    middle = prose(6, "Middle.")
    notebooks = {
        "mxnet": notebook(TITLE, code(1, "a = 1"), code(2, "b = 2"), middle, code(7, "c = 3")),
        "pytorch": notebook(TITLE, code(3, "a = 1  # torch"), middle, code(8, "c = 3  # torch")),
        "jax": notebook(TITLE, code(4, "a = 1  # jax"), middle, code(9, "c = 3  # jax")),
        "tensorflow": notebook(TITLE, code(5, "a = 1  # tf"), middle, code(10, "c = 3  # tf")),
    }
    assert list(notebooks) == list(FRAMEWORKS)
    page = merge_chapter(notebooks, LINKS)
    assert tabbed(page) == [
        (1, "mxnet", "a = 1"),
        (1, "mxnet", "b = 2"),
        (1, "pytorch", "a = 1  # torch"),
        (1, "jax", "a = 1  # jax"),
        (1, "tensorflow", "a = 1  # tf"),
        (2, "mxnet", "c = 3"),
        (2, "pytorch", "c = 3  # torch"),
        (2, "jax", "c = 3  # jax"),
        (2, "tensorflow", "c = 3  # tf"),
    ]
    assert [cell.source for cell in page.cells if cell.cell_type == "markdown"][1] == "Middle."


def test_a_shared_cell_with_the_same_output_everywhere_is_shown_once_outside_tabs():
    notebooks = chapter_notebooks({}, shared_cells=[TITLE])
    for framework in FRAMEWORKS:
        notebooks[framework].cells.append(code(1, "print(42)", stdout("42\n"), stderr(f"{framework} log\n")))
    page = merge_chapter(notebooks, LINKS)
    (cell,) = [cell for cell in page.cells if cell.cell_type == "code"]
    assert tab_of(cell) is None
    # stderr (framework start-up logging) is neither shown nor makes outputs differ
    assert [output.get("name") for output in cell.outputs] == ["stdout"]


def test_a_shared_cell_whose_outputs_differ_gets_one_tab_per_framework_with_its_own_output():
    notebooks = chapter_notebooks({}, shared_cells=[TITLE])
    for framework in FRAMEWORKS:
        notebooks[framework].cells.append(code(1, "train()", stdout(f"1.0 examples/sec on {framework}\n")))
    page = merge_chapter(notebooks, LINKS)
    cells = [cell for cell in page.cells if cell.cell_type == "code"]
    assert [(tab_of(cell)["set"], tab_of(cell)["framework"]) for cell in cells] == [
        (1, framework) for framework in FRAMEWORKS
    ]
    assert [cell.outputs[0].text for cell in cells] == [f"1.0 examples/sec on {fw}\n" for fw in FRAMEWORKS]
    assert len({cell.id for cell in page.cells}) == len(page.cells), "cell ids must stay unique"


def test_a_shared_cell_between_framework_cells_splits_the_tab_sets():
    notebooks = chapter_notebooks(
        {"pytorch": [code(1, "x = torch.ones(1)"), code(3, "y = torch.ones(1)")]},
        shared_cells=[TITLE, code(2, "print('same')", stdout("same\n"))],
    )
    page = merge_chapter(notebooks, LINKS)
    kinds = [tab_of(cell)["set"] if tab_of(cell) else "shared"
             for cell in page.cells if cell.cell_type == "code"]
    assert kinds == [1, "shared", 2]


def test_figures_get_alt_text_that_names_the_framework():
    notebooks = chapter_notebooks(
        {
            "mxnet": [code(1, "d2l.plot(x, y)\n# done", figure())],
            "pytorch": [code(2, "d2l.show_images(X);", figure(), alt="Twenty training images")],
            "jax": [code(3, "d2l.plot(x, y);", figure())],
            "tensorflow": [code(4, "print(1)", stdout("1\n"))],
        },
        shared_cells=[TITLE],
    )
    page = merge_chapter(notebooks, LINKS)
    alts = {
        tab_of(cell)["framework"]: cell.metadata.get("mystnb", {}).get("image", {}).get("alt")
        for cell in page.cells
        if tab_of(cell)
    }
    assert alts == {
        "mxnet": "Figure output of the MXNet cell: d2l.plot(x, y)",
        "pytorch": "Figure output of the PyTorch cell: Twenty training images",
        "jax": "Figure output of the JAX cell: d2l.plot(x, y)",
        "tensorflow": None,  # no figure, no alt text
    }


def test_the_page_offers_every_framework_notebook_right_under_its_title():
    page = merge_chapter(chapter_notebooks({"pytorch": [code(1, "profile = d2l.profile_name()")]},
                                           shared_cells=[TITLE]), LINKS)
    first = page.cells[0].source
    title = first.index("# A Chapter")
    note = first.index(":::{admonition}")
    assert first.index("(sec_chapter)=") < title < note < first.index("First paragraph.")
    links = re.findall(r"\{download\}`(\w+) <([^>]+)>`", first)
    assert links == [(row.label, LINKS[row.name]) for row in TABLE]
    assert "GPU" in first and "D2L_PROFILE=full" in first
    # every framework's CUDA environment is named
    for row in TABLE:
        assert f"`{row.gpu_environment}`" in first, row.name


def test_a_chapter_without_profiles_is_not_told_about_D2L_PROFILE():
    page = merge_chapter(chapter_notebooks({"pytorch": [code(1, "pass")]}, shared_cells=[TITLE]), LINKS)
    note = page.cells[0].source
    assert "GPU" in note and "D2L_PROFILE" not in note and "full setting" in note


def test_a_page_without_title_gets_the_downloads_note_first():
    notebooks = chapter_notebooks({"pytorch": [code(1, "pass")]},
                                  shared_cells=[prose(0, "No title.")])
    page = merge_chapter(notebooks, LINKS)
    assert page.cells[0].source.startswith(":::{admonition}")
    assert page.cells[1].source == "No title."


def test_prose_that_differs_between_notebooks_means_they_are_out_of_date():
    notebooks = chapter_notebooks({}, shared_cells=[TITLE, prose(1, "Old text.")])
    notebooks["tensorflow"].cells[1] = prose(1, "New text.")
    with pytest.raises(BookError, match="cell-1 differs"):
        merge_chapter(notebooks, LINKS)


def test_a_cell_id_not_made_by_nbsplit_is_an_error():
    notebooks = chapter_notebooks({}, shared_cells=[TITLE])
    notebooks["mxnet"].cells.append(nbformat.v4.new_code_cell("pass", id="abc"))
    with pytest.raises(BookError, match="'abc'"):
        merge_chapter(notebooks, LINKS)


def test_a_position_that_is_code_in_one_notebook_and_prose_in_another_is_an_error():
    notebooks = chapter_notebooks({"pytorch": [code(1, "pass")]}, shared_cells=[TITLE])
    notebooks["mxnet"].cells.append(prose(1, "text"))
    with pytest.raises(BookError, match="cell-1"):
        merge_chapter(notebooks, LINKS)


# --- Markdown helpers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "before, after",
    [
        ("# Title\n(sec_a)=\n\nText", "(sec_a)=\n# Title\n\nText"),
        ("Intro\n\n## Part\n(sec_b)=\nText", "Intro\n\n(sec_b)=\n## Part\nText"),
        # a label after a blank line names the paragraph below it: leave it there
        ("# Title\n\n(fig_a)=\nText", "# Title\n\n(fig_a)=\nText"),
        ("(sec_c)=\n# Title\n", "(sec_c)=\n# Title\n"),
        ("```python\n# comment\n```", "```python\n# comment\n```"),
    ],
)
def test_labels_under_headings_move_above_them(before, after):
    assert hoist_heading_labels(before) == after


def test_last_code_line_skips_comments_blank_lines_and_the_semicolon():
    assert last_code_line("x = 1\nshow(x);\n# the end\n\n") == "show(x)"
    assert last_code_line("# only a comment") == "(no code)"


# --- chapter order and files -------------------------------------------------------------


def test_the_order_file_lists_names_with_comments():
    assert read_chapter_order("# the order\ngan   # first\n\ndcgan\n") == ["gan", "dcgan"]
    with pytest.raises(BookError, match="twice"):
        read_chapter_order("gan\ndcgan\ngan\n")


def test_chapters_follow_the_order_file_and_unwritten_ones_are_skipped():
    assert ordered_chapters(["gan", "dcgan"], ["dcgan"]) == ["dcgan"]
    assert ordered_chapters(["gan", "dcgan"], ["dcgan", "gan"]) == ["gan", "dcgan"]


def test_a_chapter_missing_from_the_order_file_stops_the_build():
    with pytest.raises(BookError, match="wgan"):
        ordered_chapters(["gan", "dcgan"], ["dcgan", "wgan"])


def test_the_front_page_ends_with_a_numbered_toctree_in_book_order():
    text = index_page("# Book\n\nHello.\n", ["gan", "dcgan"])
    assert text.endswith("```{toctree}\n:maxdepth: 2\n:numbered:\n\ngan\ndcgan\n```\n")


def write_executed(folder, chapter, notebooks):
    for framework, nb in notebooks.items():
        path = folder / framework / f"{chapter}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)


def test_build_sources_rewrites_nothing_when_nothing_changed_and_drops_removed_chapters(tmp_path):
    executed = tmp_path / "notebooks"
    out = tmp_path / "book"
    notebooks = chapter_notebooks({"pytorch": [code(1, "pass")]}, shared_cells=[TITLE])
    write_executed(executed, "one", notebooks)
    write_executed(executed, "two", notebooks)
    build_sources(["chapters/one.md", "chapters/two.md"], executed, "two\none\n", "# Book\n", out)
    assert sorted(path.name for path in out.iterdir()) == ["index.md", "one.ipynb", "two.ipynb"]
    assert (out / "index.md").read_text().endswith("two\none\n```\n")

    past = time.time() - 1000
    for path in out.iterdir():
        os.utime(path, (past, past))
    build_sources(["chapters/one.md", "chapters/two.md"], executed, "two\none\n", "# Book\n", out)
    assert all(path.stat().st_mtime == past for path in out.iterdir()), "unchanged pages must keep their time"

    build_sources(["chapters/two.md"], executed, "two\none\n", "# Book\n", out)
    assert sorted(path.name for path in out.iterdir()) == ["index.md", "two.ipynb"]


def test_build_sources_names_the_missing_notebooks(tmp_path):
    with pytest.raises(BookError, match="make notebooks"):
        build_sources(["chapters/one.md"], tmp_path / "none", "one\n", "# Book\n", tmp_path / "book")


# --- a real Sphinx build with book/conf.py ----------------------------------------------


@pytest.fixture(scope="module")
def built_page(tmp_path_factory):
    """Build a one-chapter book with the real configuration; return (html, warnings)."""
    sphinx_build = pytest.importorskip("sphinx.cmd.build")
    root = tmp_path_factory.mktemp("book")
    executed, src, out = root / "notebooks", root / "src", root / "html"
    notebooks = chapter_notebooks(
        {
            "mxnet": [code(1, "x = np.ones(2)", stdout("mx\n"))],
            "pytorch": [code(2, "x = torch.ones(2)", stdout("pt\n")), code(7, "y = torch.zeros(1)",
                                                                           figure())],
            "jax": [code(3, "x = jnp.ones(2)", stdout("jax\n"))],
            "tensorflow": [code(4, "x = tf.ones(2)", stdout("tf\n"))],
        },
        shared_cells=[
            TITLE,
            prose(5, "See {ref}`sec_chapter`, {ref}`the basic GAN section <sec_basic_gan>` and $x^2$."),
            code(6, "print('shared')", stdout("shared\n")),
        ],
    )
    write_executed(executed, "chapter", notebooks)
    build_sources(["chapters/chapter.md"], executed, "chapter\n", "# Book\n", src)
    warnings = root / "warnings.txt"
    status = sphinx_build.build_main(
        ["-b", "html", "-W", "--keep-going", "-q", "-w", str(warnings),
         "-c", str(REPO_ROOT / "book"), "-d", str(root / "doctrees"), str(src), str(out)]
    )
    return status, (out / "chapter.html").read_text(encoding="utf-8"), warnings.read_text(), out


def test_sphinx_builds_the_page_without_warnings(built_page):
    status, _html, warnings, _out = built_page
    assert (status, warnings) == (0, "")


def whole_div(html, start):
    """The HTML of the <div> that opens at ``start``, up to its matching </div>."""
    depth = 0
    for tag in re.finditer(r"<div\b|</div>", html[start:]):
        depth += 1 if tag.group() != "</div>" else -1
        if depth == 0:
            return html[start : start + tag.end()]
    raise AssertionError("unbalanced <div>")


def tab_sets_of(html):
    """The HTML of each framework tab set."""
    return [whole_div(html, match.start()) for match in re.finditer(r'<div class="[^"]*book-framework-tabs',
                                                                    html)]


def tab_labels(tab_set):
    """The attributes and text of each tab label of a tab set."""
    labels = []
    for attributes, text in re.findall(r"<label ([^>]*)>\s*([^<]*)", tab_set):
        labels.append({**dict(re.findall(r'([\w-]+)="([^"]*)"', attributes)), "text": text.strip()})
    return labels


def test_each_run_of_framework_cells_is_one_synced_tab_set_with_pytorch_selected(built_page):
    _status, html, _warnings, _out = built_page
    sets = tab_sets_of(html)
    assert len(sets) == 2
    for tab_set in sets:
        labels = tab_labels(tab_set)
        assert [(label["data-sync-id"], label["text"]) for label in labels] == [
            (row.name, row.label) for row in TABLE
        ]
        assert {label["data-sync-group"] for label in labels} == {"framework"}
        checked = re.findall(r'<input checked="checked" id="([\w-]+)"', tab_set)
        assert [label["data-sync-id"] for label in labels if [label["for"]] == checked] == ["pytorch"]
    first, second = sets
    assert "framework-mxnet" in first and "torch" in first and "jnp" in first and "tf" in first
    assert all(f"framework-{framework}" in first for framework in FRAMEWORKS)
    # the second set holds only a PyTorch cell: the other tabs say so
    assert second.count("book-no-code") == len(FRAMEWORKS) - 1
    for row in TABLE:
        if row.name != "pytorch":
            assert f"This step has no {row.label} code." in second


def test_shared_cells_appear_once_outside_the_tabs(built_page):
    _status, html, _warnings, _out = built_page
    assert html.count("shared\n</pre>") == 1  # the output of the shared cell
    assert not any("shared" in tab_set for tab_set in tab_sets_of(html))


def test_figures_are_files_with_alt_text(built_page):
    _status, html, _warnings, out = built_page
    images = re.findall(r'<img alt="([^"]*)" src="([^"]+)"', html)
    assert images == [("Figure output of the PyTorch cell: y = torch.zeros(1)", images[0][1])]
    assert (out / images[0][1]).is_file()


def test_references_resolve_or_become_plain_text(built_page):
    _status, html, _warnings, _out = built_page
    # the label written under the title names the section
    assert re.search(r'<a class="reference internal" href="#sec-chapter">'
                     r'<span class="std std-ref">A Chapter</span>', html)
    assert '<span class="book-pending-ref">the basic GAN section</span>' in html


def test_the_notebooks_are_copied_for_download(built_page):
    _status, html, _warnings, out = built_page
    links = re.findall(r'class="reference download internal"[^>]*href="([^"]+)"', html)
    assert len(links) == len(FRAMEWORKS)
    kernels = [nbformat.read(out / link, as_version=4).metadata.kernelspec.name for link in links]
    assert kernels == list(FRAMEWORKS)


def test_math_is_served_by_the_book_itself(built_page):
    _status, html, _warnings, out = built_page
    (src,) = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', html)
    assert not src.startswith("http") and (out / src).is_file()


def test_book_chapters_lists_the_written_chapters_in_book_order(tmp_path):
    (tmp_path / "chapters").mkdir()
    for name in ("dcgan", "gan"):
        (tmp_path / "chapters" / f"{name}.md").write_text("# x\n")
    order = tmp_path / "chapters.txt"
    order.write_text("# order\ngan\nnot_written_yet  # planned\ndcgan\n")
    assert book_chapters(order, tmp_path / "chapters") == ["gan", "dcgan"]
    (tmp_path / "chapters" / "extra.md").write_text("# x\n")
    with pytest.raises(BookError, match="extra"):
        book_chapters(order, tmp_path / "chapters")
