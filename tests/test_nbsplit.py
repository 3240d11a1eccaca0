"""Tests for tools.nbsplit: splitting a tabbed chapter into per-framework notebooks."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jupytext
import nbformat
import pytest

from d2l_shim import FRAMEWORKS, TABLE
from tools.nbsplit import (
    ChapterError,
    code_cell_fence_lines,
    parse_tab_line,
    split_chapter,
    write_notebooks,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

DATA = Path(__file__).resolve().parent / "data"
THREE_FRAMEWORKS = DATA / "three_frameworks.md"
FENCE_CORNER_CASES = DATA / "fence_corner_cases.md"

#: A name that looks like a framework but is not one of the book's.
NOT_A_FRAMEWORK = "theano"


def code_sources(notebook):
    """Return the sources of a notebook's code cells, in order."""
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def markdown_sources(notebook):
    """Return the sources of a notebook's Markdown cells, in order."""
    return [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]


def write_chapter(folder, text, name="chapter.md"):
    """Write a chapter from an indented triple-quoted string; return its path."""
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def run_cli(*arguments, cwd=REPO_ROOT):
    """Run `python -m tools.nbsplit` and return the completed process."""
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "tools.nbsplit", *map(str, arguments)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- the split itself ---------------------------------------------------------


def test_each_framework_gets_its_code_cells_without_the_tab_line():
    notebooks = split_chapter(THREE_FRAMEWORKS)
    assert list(notebooks) == list(FRAMEWORKS)
    assert code_sources(notebooks["mxnet"]) == [
        "import math",
        "from mxnet import np",
        "shared_by_two = True",
    ]
    assert code_sources(notebooks["pytorch"]) == [
        "import math",
        "import torch",
        "shared_by_two = True",
        'print(math.sqrt(4))\nprint("second line")',
    ]
    assert code_sources(notebooks["jax"]) == [
        "import math",
        "import jax.numpy as jnp",
    ]
    assert code_sources(notebooks["tensorflow"]) == [
        "import math",
        "import tensorflow as tf",
        'print(math.sqrt(4))\nprint("second line")',
    ]


def test_no_tab_line_survives_in_any_code_cell():
    for notebook in split_chapter(THREE_FRAMEWORKS).values():
        for source in code_sources(notebook):
            assert "#@tab" not in source


def test_markdown_cells_are_shared_by_every_notebook():
    notebooks = split_chapter(THREE_FRAMEWORKS)
    expected = markdown_sources(notebooks["mxnet"])
    assert len(expected) == 3
    assert expected[0].startswith("# A chapter in every framework")
    # The ```text listing, with its "#@tab jax" and "```python" lines, is prose.
    assert "#@tab jax" in expected[1]
    assert expected[2] == "## Closing words"
    for framework in FRAMEWORKS:
        assert markdown_sources(notebooks[framework]) == expected


def test_cells_keep_the_chapter_order():
    pytorch = split_chapter(THREE_FRAMEWORKS)["pytorch"]
    kinds = [cell.cell_type for cell in pytorch.cells]
    assert kinds == ["markdown", "code", "code", "markdown", "code", "code", "markdown"]


def test_kernelspec_and_language_info_name_the_framework():
    display_names = {row.name: f"Python 3 ({row.label})" for row in TABLE}
    assert display_names["pytorch"] == "Python 3 (PyTorch)"
    notebooks = split_chapter(THREE_FRAMEWORKS)
    assert set(notebooks) == set(display_names)
    for framework, notebook in notebooks.items():
        assert notebook.metadata == {
            "kernelspec": {"name": framework, "display_name": display_names[framework], "language": "python"},
            "language_info": {"name": "python"},
        }


def test_result_is_a_valid_plain_notebook_without_jupytext_metadata():
    for notebook in split_chapter(THREE_FRAMEWORKS).values():
        nbformat.validate(notebook)
        assert "jupytext" not in notebook.metadata
        for cell in notebook.cells:
            # "import torch" has the next fence right under it, which makes
            # Jupytext record lines_to_next_cell on that cell.
            assert "lines_to_next_cell" not in cell.metadata


def test_cell_tags_are_preserved():
    notebooks = split_chapter(THREE_FRAMEWORKS)
    tagged = [cell for cell in notebooks["tensorflow"].cells if cell.metadata.get("tags")]
    assert [cell.metadata["tags"] for cell in tagged] == [["nbval-check-output"]]
    assert tagged[0].source.startswith("print(math.sqrt(4))")
    assert not any(cell.metadata.get("tags") for cell in notebooks["mxnet"].cells)


def test_cell_ids_are_deterministic_unique_and_shared_between_frameworks():
    first, second = split_chapter(THREE_FRAMEWORKS), split_chapter(THREE_FRAMEWORKS)
    for framework in first:
        ids = [cell.id for cell in first[framework].cells]
        assert ids == [cell.id for cell in second[framework].cells]
        assert len(set(ids)) == len(ids)
    # The same Markdown cell has the same id in every notebook.
    assert {notebook.cells[0].id for notebook in first.values()} == {first["mxnet"].cells[0].id}
    assert len(first) == len(FRAMEWORKS)


def test_split_can_be_limited_to_some_frameworks():
    notebooks = split_chapter(THREE_FRAMEWORKS, frameworks=("pytorch",))
    assert list(notebooks) == ["pytorch"]


# --- tab lines ------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, expected",
    [
        ("#@tab all", set(FRAMEWORKS)),
        ("#@tab pytorch", {"pytorch"}),
        ("#@tab jax", {"jax"}),
        ("#@tab mxnet, pytorch", {"mxnet", "pytorch"}),
        ("#@tab mxnet,tensorflow", {"mxnet", "tensorflow"}),
        ("#@tab  pytorch ,  tensorflow ", {"pytorch", "tensorflow"}),
        ("#@tab pytorch, jax", {"pytorch", "jax"}),
        ("#@tab all, pytorch", set(FRAMEWORKS)),
    ],
)
def test_parse_tab_line(line, expected):
    assert parse_tab_line(line) == expected


@pytest.mark.parametrize("line", ["import torch", "# @tab all", "#@tabs all", "#@tab", "#@tab pytroch",
                                  f"#@tab {NOT_A_FRAMEWORK}", "#@tab mxnet,"])
def test_parse_tab_line_rejects(line):
    with pytest.raises(ValueError):
        parse_tab_line(line)


# --- finding the line of a code cell ---------------------------------------------


def test_fence_scan_finds_exactly_the_code_cells_jupytext_reads():
    text = FENCE_CORNER_CASES.read_text(encoding="utf-8")
    # Listings (```text, bare ```), ```Python, ```{python}, .noeval, indented and
    # ~~~ fences and fences inside a region are Markdown for Jupytext; ```bash is
    # a code cell; a ``` inside a triple-quoted string does not close a cell.
    assert code_cell_fence_lines(text) == [3, 18, 25, 32, 64, 68, 72]
    code_cells = [cell for cell in jupytext.reads(text, fmt="md").cells if cell.cell_type == "code"]
    assert len(code_cells) == 7
    lines = text.splitlines()
    for fence_line, cell in zip(code_cell_fence_lines(text), code_cells):
        body_first_line = lines[fence_line]  # the line after the fence (0-based index)
        assert body_first_line in cell.source.splitlines()


def test_fence_scan_matches_jupytext_on_the_sample_chapter():
    text = THREE_FRAMEWORKS.read_text(encoding="utf-8")
    assert code_cell_fence_lines(text) == [14, 19, 24, 28, 33, 46, 51]
    assert sum(cell.cell_type == "code" for cell in jupytext.read(THREE_FRAMEWORKS).cells) == 7


# --- chapter errors ---------------------------------------------------------------


def test_untagged_cell_error_names_file_line_text_and_allowed_names(tmp_path):
    chapter = write_chapter(
        tmp_path,
        """
        # Title

        ```python
        #@tab all
        import math
        ```

        ```text
        a listing is not a code cell
        ```

        ```python
        import torch
        ```
        """,
    )
    with pytest.raises(ChapterError) as raised:
        split_chapter(chapter)
    message = str(raised.value)
    assert f"{chapter}:12:" in message
    assert "import torch" in message
    for name in ("all", *FRAMEWORKS):
        assert name in message


@pytest.mark.parametrize("tab_line, bad_name", [(f"#@tab {NOT_A_FRAMEWORK}", NOT_A_FRAMEWORK),
                                                 ("#@tab mxnet, pytroch", "pytroch")])
def test_unknown_tab_name_error_names_the_line(tmp_path, tab_line, bad_name):
    chapter = write_chapter(
        tmp_path,
        f"""
        # Title

        ```python
        #@tab all
        x = 1
        ```
        ```python
        #@tab all
        y = 2
        ```

        Prose.

        ```python
        {tab_line}
        z = 3
        ```
        """,
    )
    with pytest.raises(ChapterError) as raised:
        split_chapter(chapter)
    message = str(raised.value)
    assert f"{chapter}:14:" in message
    assert repr(bad_name) in message
    assert tab_line in message
    assert f"allowed names: {', '.join(('all', *FRAMEWORKS))}" in message


def test_empty_tab_list_is_an_error(tmp_path):
    chapter = write_chapter(
        tmp_path,
        """
        ```python
        #@tab
        x = 1
        ```
        """,
    )
    with pytest.raises(ChapterError, match=r"chapter\.md:1: .*names no framework"):
        split_chapter(chapter)


def test_a_known_language_fence_is_a_code_cell_that_needs_a_tab(tmp_path):
    chapter = write_chapter(
        tmp_path,
        """
        ```python
        #@tab all
        x = 1
        ```

        ```bash
        ls
        ```
        """,
    )
    with pytest.raises(ChapterError, match=r"chapter\.md:6: .*'%%bash'"):
        split_chapter(chapter)


def test_framework_without_code_cells_is_an_error(tmp_path):
    chapter = write_chapter(
        tmp_path,
        """
        ```python
        #@tab mxnet, pytorch
        x = 1
        ```
        """,
    )
    without_code = [framework for framework in FRAMEWORKS if framework not in ("mxnet", "pytorch")]
    assert without_code
    with pytest.raises(ChapterError, match=f"no code cell for {without_code[0]}"):
        split_chapter(chapter)
    for framework in without_code:
        with pytest.raises(ChapterError, match=f"no code cell for {framework}"):
            split_chapter(chapter, frameworks=("mxnet", framework))
    # Leaving those frameworks out is fine.
    assert set(split_chapter(chapter, frameworks=("mxnet", "pytorch"))) == {"mxnet", "pytorch"}


def test_error_falls_back_to_cell_position_when_lines_cannot_be_matched(tmp_path):
    # A MyST chapter has {code-cell} fences, which the Markdown scan does not
    # count; the message must not point at a wrong line.
    chapter = write_chapter(
        tmp_path,
        """
        ---
        jupytext:
          text_representation:
            extension: .md
            format_name: myst
        kernelspec:
          name: python3
          display_name: Python 3
        ---

        ```{code-cell}
        #@tab all
        x = 1
        ```

        ```{code-cell}
        y = 2
        ```
        """,
    )
    with pytest.raises(ChapterError, match=r"code cell 2 \(line unknown\)"):
        split_chapter(chapter)


# --- writing -------------------------------------------------------------------


def test_write_notebooks_writes_one_file_per_framework(tmp_path):
    paths = write_notebooks(THREE_FRAMEWORKS, tmp_path / "out")
    assert paths == {fw: tmp_path / "out" / fw / "three_frameworks.ipynb" for fw in FRAMEWORKS}
    pytorch = nbformat.read(paths["pytorch"], as_version=4)
    assert pytorch.metadata.kernelspec.name == "pytorch"
    assert code_sources(pytorch) == code_sources(split_chapter(THREE_FRAMEWORKS)["pytorch"])
    # Nothing but the notebooks is left behind (no temporary files).
    assert sorted(path.name for path in (tmp_path / "out").rglob("*") if path.is_file()) == [
        "three_frameworks.ipynb"
    ] * len(FRAMEWORKS)


def test_rewriting_unchanged_notebooks_keeps_their_mtime(tmp_path):
    paths = write_notebooks(THREE_FRAMEWORKS, tmp_path)
    long_ago = 1_000_000_000
    for path in paths.values():
        os.utime(path, (long_ago, long_ago))
    contents = {fw: path.read_bytes() for fw, path in paths.items()}
    write_notebooks(THREE_FRAMEWORKS, tmp_path)
    for framework, path in paths.items():
        assert path.stat().st_mtime == long_ago
        assert path.read_bytes() == contents[framework]


def test_changed_chapter_rewrites_only_the_affected_notebooks(tmp_path):
    chapter = tmp_path / "three_frameworks.md"
    chapter.write_text(THREE_FRAMEWORKS.read_text(encoding="utf-8"), encoding="utf-8")
    paths = write_notebooks(chapter, tmp_path / "out")
    long_ago = 1_000_000_000
    for path in paths.values():
        os.utime(path, (long_ago, long_ago))
    chapter.write_text(
        chapter.read_text(encoding="utf-8").replace("from mxnet import np", "from mxnet import npx"),
        encoding="utf-8",
    )
    write_notebooks(chapter, tmp_path / "out")
    assert paths["mxnet"].stat().st_mtime != long_ago
    assert "from mxnet import npx" in paths["mxnet"].read_text(encoding="utf-8")
    assert set(paths) == set(FRAMEWORKS)
    for framework in FRAMEWORKS:
        if framework != "mxnet":
            assert paths[framework].stat().st_mtime == long_ago, framework


# --- command line -------------------------------------------------------------


def test_cli_writes_the_requested_frameworks(tmp_path):
    result = run_cli(THREE_FRAMEWORKS, "--out", tmp_path, "--frameworks", "pytorch,tensorflow")
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["pytorch", "tensorflow"]
    assert (tmp_path / "pytorch" / "three_frameworks.ipynb").is_file()


def test_cli_reports_chapter_errors_without_traceback(tmp_path):
    chapter = write_chapter(
        tmp_path,
        """
        Prose.

        ```python
        #@tab pytroch
        x = 1
        ```
        """,
    )
    result = run_cli(chapter, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert f"{chapter}:3:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_cli_rejects_unknown_framework_option(tmp_path):
    result = run_cli(THREE_FRAMEWORKS, "--out", tmp_path, "--frameworks", f"pytorch,{NOT_A_FRAMEWORK}")
    assert result.returncode == 2
    assert NOT_A_FRAMEWORK in result.stderr
    assert not any(tmp_path.iterdir())
