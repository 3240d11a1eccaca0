"""tools/execute.py: progress on the console, a quiet kernel, failures named by chapter.

The notebooks here are tiny and run in ipykernel's own ``python3`` kernel of the
tooling environment, so no framework is imported.
"""
import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from tools import execute

REPO_ROOT = Path(__file__).resolve().parents[1]

#: A cell that reports three epochs the way the Animator does: one display, then updates.
PROGRESS_CELL = textwrap.dedent("""\
    from IPython.display import display, update_display
    def frame_metadata(done):
        return {'d2l_progress': {'done': done, 'total': 3, 'unit': 'epoch'}}
    display('frame 1', display_id='frames', metadata=frame_metadata(1))
    for done in (2, 3):
        update_display(f'frame {done}', display_id='frames', metadata=frame_metadata(done))
    """)

TRAIN_DEFINITION = textwrap.dedent("""\
    def train(net_D, net_G, data_iter, num_epochs):
        if not data_iter:
            raise ValueError(f'no batches in {data_iter!r}')""")

TRAIN_CALL = "# Train on nothing at all.\ntrain(net_D=None, net_G=None, data_iter=[], num_epochs=3)"


def make_notebook(path, *sources, kernel="python3"):
    """A split notebook as tools/nbsplit writes it: a Markdown cell, then the code cells."""
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# A chapter"),
               *(nbformat.v4.new_code_cell(source) for source in sources)],
        metadata={"kernelspec": {"name": kernel, "display_name": "Python 3", "language": "python"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def run_cli(notebook, out):
    """Run the executor as make does; stderr is a pipe, so progress comes as plain lines."""
    return subprocess.run([sys.executable, "-m", "tools.execute", str(notebook), "--out", str(out),
                           "--timeout", "120"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


def assert_no_kernel_chatter(console):
    assert "IPKernelApp" not in console
    assert "without encryption" not in console
    assert "\x1b[" not in console


def test_cli_shows_progress_and_no_kernel_chatter(tmp_path):
    notebook = make_notebook(
        tmp_path / "split" / "pytorch" / "dcgan.ipynb",
        "import os",
        # Kernel chatter as ipykernel writes it, to the kernel process's own stderr.
        "get_ipython().kernel.log.warning('kernel chatter')",
        PROGRESS_CELL)
    out = tmp_path / "notebooks" / "pytorch" / "dcgan.ipynb"

    result = run_cli(notebook, out)

    assert result.returncode == 0, result.stderr
    assert re.fullmatch(rf"executed {re.escape(str(notebook))} -> {re.escape(str(out))} in \d+ s\n",
                        result.stdout)
    assert_no_kernel_chatter(result.stderr)
    assert "kernel chatter" not in result.stderr
    lines = result.stderr.splitlines()
    # Every console line is ours: the kernel's stderr does not reach it.
    assert all(line.startswith("dcgan [pytorch] [") for line in lines), lines
    assert lines[0].endswith("] 3 code cells")
    epochs = [line for line in lines if ": epoch " in line]
    # The first and the last epoch; the second comes too soon after the first to get a line.
    assert [line.split(": ", 1)[1].split(",")[0] for line in epochs] == ["epoch 1/3", "epoch 3/3"]
    assert "cell 3/3 'from IPython.display import display, ...'" in epochs[0]
    assert re.search(r"\] cell 3/3 '.*' done in \d\d:\d\d$", lines[-1])
    executed = nbformat.read(out, as_version=4)
    assert executed.cells[3].outputs[-1]["data"]["text/plain"] == "'frame 3'"


def test_failing_cell_names_chapter_tab_and_first_line(tmp_path):
    notebook = make_notebook(tmp_path / "split" / "pytorch" / "dcgan.ipynb", TRAIN_DEFINITION, TRAIN_CALL)
    out = tmp_path / "notebooks" / "pytorch" / "dcgan.ipynb"
    out.parent.mkdir(parents=True)
    out.write_text("the previous run's notebook\n")
    before = out.stat().st_mtime_ns

    result = run_cli(notebook, out)

    assert result.returncode == 1
    assert result.stdout == ""
    assert_no_kernel_chatter(result.stderr)
    message = result.stderr[result.stderr.index("chapters/"):]
    lines = message.splitlines()
    assert lines[0] == ("chapters/dcgan.md, tab pytorch: the cell starting "
                        "'train(net_D=None, net_G=None, ...' raised ValueError: no batches in []")
    # A short traceback: the failing cell's line, the raising line, the exception; no IPython dump.
    assert lines[1] == "Traceback (most recent call last):"
    assert "    train(net_D=None, net_G=None, data_iter=[], num_epochs=3)" in lines
    assert "    raise ValueError(f'no batches in {data_iter!r}')" in lines
    assert "ValueError: no batches in []" in lines
    assert len(lines) < 12
    assert f"{out} was not written" in lines[-1]
    assert out.read_text() == "the previous run's notebook\n"
    assert out.stat().st_mtime_ns == before
    assert [path.name for path in out.parent.iterdir()] == ["dcgan.ipynb"]  # no temporary left


def test_progress_marks_drive_the_progress_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(execute.Progress, "interval", 0.0)  # a line for every epoch
    notebook = make_notebook(tmp_path / "split" / "mxnet" / "gan.ipynb", PROGRESS_CELL,
                             # A mark without the fields is ignored, not fatal.
                             "display('odd', metadata={'d2l_progress': {'done': 'x'}})")
    console = io.StringIO()

    execute.execute_notebook(notebook, tmp_path / "out.ipynb", stream=console)

    lines = console.getvalue().splitlines()
    assert lines[0].startswith("gan [mxnet] [") and lines[0].endswith("] 2 code cells")
    epochs = [line for line in lines if ": epoch " in line]
    assert [re.search(r"epoch \d/\d", line).group() for line in epochs] == [
        "epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("cell 1/2 " in line for line in epochs)
    # From the second epoch on, the rate so far gives the time left; none is left after the last.
    assert re.search(r"epoch 2/3, about \d\d:\d\d left$", epochs[1])
    assert epochs[2].endswith("epoch 3/3")
    assert re.search(r"cell 1/2 '.*' done in \d\d:\d\d$", lines[-1])


def test_traceback_points_into_the_chapter(tmp_path, monkeypatch):
    chapter = tmp_path / "chapters" / "gan.md"
    chapter.parent.mkdir()
    chapter.write_text(f"# GANs\n\nSome prose.\n\n```python\n#@tab all\n{TRAIN_DEFINITION}\n```\n")
    monkeypatch.setattr(execute, "REPO_ROOT", tmp_path)
    notebook = make_notebook(tmp_path / "split" / "tensorflow" / "gan.ipynb", TRAIN_DEFINITION, TRAIN_CALL)

    with pytest.raises(execute.CellFailure) as failure:
        execute.execute_notebook(notebook, tmp_path / "out.ipynb", stream=io.StringIO())

    message = str(failure.value)
    assert message.startswith("chapters/gan.md, tab tensorflow: the cell starting 'train(")
    # The raise is on line 9 of the chapter: fence on line 5, tab line 6, `def` on 7.
    assert "  chapters/gan.md:9, in train(net_D, net_G, data_iter, num_epochs)" in message.splitlines()
    assert failure.value.ename == "ValueError"
    assert not (tmp_path / "out.ipynb").exists()


def test_a_dying_kernel_is_named_with_its_last_words(tmp_path):
    notebook = make_notebook(tmp_path / "split" / "pytorch" / "gan.ipynb",
                             "import os\nos.write(2, b'last words\\n')\nos.kill(os.getpid(), 9)")

    with pytest.raises(execute.CellFailure) as failure:
        execute.execute_notebook(notebook, tmp_path / "out.ipynb", stream=io.StringIO())

    lines = str(failure.value).splitlines()
    assert lines[0].startswith(
        "chapters/gan.md, tab pytorch: the cell starting 'import os' killed the kernel")
    assert lines[-1] == "last words"


def test_an_unknown_kernel_says_how_to_register_it(tmp_path):
    notebook = make_notebook(tmp_path / "split" / "pytorch" / "gan.ipynb", "1", kernel="no-such-kernel")

    with pytest.raises(execute.CellFailure, match="the 'no-such-kernel' kernel failed to start .*make setup"):
        execute.execute_notebook(notebook, tmp_path / "out.ipynb", stream=io.StringIO())


# --- the parts, without a kernel ----------------------------------------------------


@pytest.mark.parametrize("source, expected", [
    ("#@tab pytorch\nrun = train(net_D, net_G, data_iter, held_out, num_epochs)",
     "run = train(net_D, net_G, data_iter, ..."),
    ("\n# The generator.\n\nnet_G = nn.Sequential()\n", "net_G = nn.Sequential()"),
    ("# only a comment", "# only a comment"),
    ("x = 'averyveryveryveryveryveryverylongwordwithoutspaces'",
     "x = 'averyveryveryveryveryveryverylongwo ..."),
])
def test_first_code_line(source, expected):
    assert execute.first_code_line(source, 40) == expected


def test_chapter_of_split_notebooks():
    notebook = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "tensorflow", "display_name": "TF", "language": "python"}})
    split = Path("build/split/pytorch/dcgan.ipynb")
    assert execute.chapter_of(split, notebook) == (Path("chapters/dcgan.md"), "pytorch")
    # Outside a framework folder the kernel names the tab.
    elsewhere = Path("elsewhere/gan.ipynb")
    assert execute.chapter_of(elsewhere, notebook) == (Path("chapters/gan.md"), "tensorflow")


def test_chapter_line_needs_the_whole_cell():
    text = "# T\n\n```python\n#@tab all\nx = 1\ny = 2\n```\n\n```python\n#@tab pytorch\ny = 2\n```\n"
    assert execute.chapter_line(text, "x = 1\ny = 2") == 5
    assert execute.chapter_line(text, "y = 2") == 11
    assert execute.chapter_line(text, "z = 3") is None


def test_short_traceback_strips_colours_and_keeps_few_frames():
    # IPython's entries, coloured: separator, header, the cell's frame, six file frames, the exception.
    blue, green, red, reset = "\x1b[36m", "\x1b[32m", "\x1b[31m", "\x1b[39m"
    frame = (f"{blue}File {reset}{green}/lib/m{{0}}.py:{{0}}{reset}, in {blue}f{{0}}{reset}\n"
             f"{green}--> {reset}{green}{{0}}{reset}     call{{0}}()\n")
    entries = [f"{red}{'-' * 75}{reset}",
               f"{red}KeyError{reset}                  Traceback (most recent call last)",
               f"{blue}Cell{reset}{blue} {reset}{green}In[4]{reset}{green}, line 2{reset}\n"
               f"      1 a = 1\n{green}----> {reset}{green}2{reset} f()\n",
               *(frame.format(n) for n in range(1, 7)),
               f"{red}KeyError{reset}: 'k'"]

    text = execute._short_traceback(entries, lambda header: header)

    assert text.splitlines() == [
        "Traceback (most recent call last):",
        "  Cell In[4], line 2",
        "    f()",
        "  ... 4 frames left out ...",
        "  File /lib/m5.py:5, in f5",
        "    call5()",
        "  File /lib/m6.py:6, in f6",
        "    call6()",
        "KeyError: 'k'",
    ]


def test_plain_progress_announces_a_long_cell_once_then_rarely():
    console = io.StringIO()
    cell = nbformat.v4.new_code_cell("#@tab all\ntrain(net_D, net_G)")
    progress = execute.Progress("dcgan [mxnet]", [cell], console)
    progress.cell_started(cell)
    progress.tick()  # not long yet
    progress.cell_started_at -= progress.long_cell
    progress.tick()
    progress.tick()  # announced just now: quiet until the interval has passed
    progress.last_line_at -= progress.interval
    progress.tick()
    progress.cell_finished()

    lines = console.getvalue().splitlines()
    assert lines[0] == "dcgan [mxnet] [00:00] 1 code cells"
    assert [line.removeprefix("dcgan [mxnet] [00:00] ") for line in lines[1:]] == [
        "cell 1/1 'train(net_D, net_G)' running for 00:20",
        "cell 1/1 'train(net_D, net_G)' running for 00:20",
        "cell 1/1 'train(net_D, net_G)' done in 00:20",
    ]


def test_terminal_progress_is_one_bar(monkeypatch):
    monkeypatch.setattr(execute, "_terminal_columns", lambda stream: 100)
    monkeypatch.delenv("MAKEFLAGS", raising=False)
    console = io.StringIO()
    cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("train(net_D, net_G)")]
    progress = execute.Progress("dcgan [pytorch]", cells, console)
    for cell in cells:
        progress.cell_started(cell)
        progress.mark({"done": 4, "total": 10, "unit": "epoch"})
        progress.cell_finished()
    progress.close()

    shown = console.getvalue()
    assert "\n" not in shown.rstrip("\n")  # redrawn in place with carriage returns, not new lines
    assert "dcgan [pytorch]" in shown
    assert "cell 2/2 'train(net_D, net_G)': epoch 4/10" in shown


def test_kernels_listen_on_unix_sockets():
    # The ipykernel warning is about TCP; the executor's kernels listen on Unix sockets.
    client = execute.ProgressClient(nbformat.v4.new_notebook(), socket_dir="/tmp/d2l-kernel-x",
                                    kernel_name="python3")
    manager = client.create_kernel_manager()
    assert manager.transport == "ipc"
    assert manager.ip == str(Path("/tmp/d2l-kernel-x").resolve() / "kernel")
    assert os.path.isabs(manager.ip)


@pytest.mark.parametrize("makeflags, bar", [
    ("", True), ("s", True), ("s -j2 --jobserver-auth=fifo:/tmp/x", False), ("-j", False)])
def test_parallel_make_gets_plain_lines(monkeypatch, makeflags, bar):
    monkeypatch.setattr(execute, "_terminal_columns", lambda stream: 100)
    monkeypatch.setenv("MAKEFLAGS", makeflags)
    progress = execute.Progress("gan [mxnet]", [], io.StringIO())
    assert (progress.bar is not None) == bar
    progress.close()
