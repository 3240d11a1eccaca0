"""Execute split notebooks, each in the Jupyter kernel its metadata names.

    python -m tools.execute build/split/pytorch/dcgan.ipynb --out build/notebooks/pytorch/dcgan.ipynb

The kernel (``mxnet``, ``pytorch`` or ``tensorflow``) must be registered where
this Python's Jupyter looks, which ``make setup`` does. The executed notebook is
written to a temporary file and renamed, so a failed run never leaves a
half-written notebook that looks finished.

While it runs, the console (stderr) shows the notebook, the cell and the elapsed
time; a cell that reports progress (the Animator puts ``{"d2l_progress": {"done":
3, "total": 10, "unit": "epoch"}}`` into the metadata of each frame it displays)
adds its epoch and the time left. On a terminal this is one tqdm bar; otherwise
(CI logs) a plain line for the notebook, for each cell that runs long, and for
its epochs at a modest rate.

A failing cell is reported by the chapter it comes from, e.g. ``chapters/dcgan.md,
tab pytorch: the cell starting 'train(net_D, net_G, ...' raised ValueError: ...``,
followed by a short traceback whose cell lines point into the chapter.
"""
import argparse
import asyncio
import atexit
import collections
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import NoSuchKernel
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from tqdm import tqdm

from tools import FRAMEWORKS, write_text_atomically

REPO_ROOT = Path(__file__).resolve().parents[1]

#: The key in a display message's metadata that carries a cell's progress.
PROGRESS_KEY = "d2l_progress"

#: How many frames of a failing cell's traceback the message keeps at most, besides
#: the first (where the cell itself failed): half in chapter code, half innermost.
TRACEBACK_FRAMES = 4

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# IPython's frame headers: "Cell In[12], line 3, in train(...)" for notebook code.
_CELL_FRAME = re.compile(r"^Cell In\[(\d+)\], line (\d+)(.*)$")
# The line a frame stopped at, marked "---->  6 code" (cell) or "--> 346 code" (file).
_ARROW_LINE = re.compile(r"^-+>\s*\d+\s?(.*)$")


class CellFailure(CellExecutionError):
    """A cell failed (raised, timed out, or killed its kernel); the message names
    the chapter, the tab and the cell."""


def strip_ansi(text):
    """Remove terminal colour codes (IPython colours its tracebacks)."""
    return _ANSI.sub("", text)


def first_code_line(source, width=None):
    """The cell's first line of code (no ``#@tab`` line, comment or blank line),
    cut at a word boundary with ``...`` when longer than ``width``."""
    lines = [line.strip() for line in source.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#@tab")]
    code = [line for line in lines if not line.startswith("#")]
    line = (code or lines or [""])[0]
    if width is None or len(line) <= width:
        return line
    cut = line[:width]
    space = cut.rfind(" ")
    return (cut[:space + 1] if space > width // 2 else cut + " ") + "..."


def chapter_of(notebook_path, notebook):
    """Return (chapter file, tab) of a split notebook build/split/<framework>/<chapter>.ipynb.

    tools/nbsplit stores no source path in the notebook, so the chapter comes from
    the file name; the tab is the framework folder, else the kernel's name.
    """
    notebook_path = Path(notebook_path)
    folder = notebook_path.parent.name
    tab = folder if folder in FRAMEWORKS else notebook.metadata.get("kernelspec", {}).get("name", folder)
    return Path("chapters") / f"{notebook_path.stem}.md", tab


def chapter_line(chapter_text, source):
    """The line of the chapter where a split cell's code starts, or None if not found."""
    if not chapter_text or not source.strip():
        return None
    # In the chapter the code follows the cell's tab line and ends with the fence.
    match = re.search(r"^#@tab[^\n]*\n(" + re.escape(source) + r")\n\s*```", chapter_text, re.MULTILINE)
    return chapter_text.count("\n", 0, match.start(1)) + 1 if match else None


def _code_cells(notebook, skip_tag):
    """The cells nbclient will send to the kernel, in order."""
    return [cell for cell in notebook.cells
            if cell.cell_type == "code" and cell.source.strip()
            and skip_tag not in cell.metadata.get("tags", [])]


def _terminal_columns(stream):
    """The width of the terminal ``stream`` writes to; 0 if it is none (or says 0)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns if stream.isatty() else 0
    except (AttributeError, OSError, ValueError):
        return 0


def _parallel_make():
    """Whether `make -j` runs us: bars of parallel runs would overwrite each other's line."""
    return re.search(r"(?:^|\s)-j|--jobserver", os.environ.get("MAKEFLAGS", "")) is not None


class _Bar(tqdm):
    """A tqdm bar whose format can show a free ``{status}`` text."""

    status = ""

    @property
    def format_dict(self):
        return {**super().format_dict, "status": self.status}


class Progress:
    """Shows how far a notebook run is on ``stream``: a bar on a terminal, plain lines otherwise."""

    #: Plain mode: a cell still running after this many seconds gets a line ...
    long_cell = 20.0
    #: ... and then at most one line per this many seconds (besides its first and last epoch).
    interval = 30.0

    def __init__(self, label, cells, stream):
        self.label, self.cells, self.stream = label, cells, stream
        self.started = time.monotonic()
        self.number = 0  # the running cell's number among the code cells
        self.cell = None
        self.bar = None
        if _terminal_columns(stream) > 0 and not _parallel_make():
            self.bar = _Bar(total=len(cells), desc=label, file=stream, leave=False, dynamic_ncols=True,
                            bar_format="{desc} {bar:12} {status} [{elapsed}]")
        else:
            self._line(f"{len(cells)} code cells")

    def cell_started(self, cell):
        self.number = next((i for i, c in enumerate(self.cells, 1) if c is cell), self.number + 1)
        self.cell = cell
        self.cell_started_at = time.monotonic()
        self.last_line_at = None  # plain mode: when this cell last got a line
        self.epoch = None  # (done, total, unit) of the latest progress mark
        self.first_mark = None  # (done, time) of the first mark of the current run
        self._show()

    def cell_finished(self):
        if self.bar is not None:
            self.bar.update(1)
        elif self.last_line_at is not None:
            self._line(f"{self._where()} done in {tqdm.format_interval(self._cell_seconds())}")
        self.cell = None

    def mark(self, progress):
        """Take one ``d2l_progress`` mark of the running cell."""
        try:
            done, total = int(progress["done"]), int(progress["total"])
            unit = str(progress.get("unit") or "step")
        except (KeyError, TypeError, ValueError):
            return  # a malformed mark is the kernel's problem, not a reason to fail the run
        if self.cell is None:
            return
        now = time.monotonic()
        # A new run in the same cell (a second training, say) restarts the estimate.
        if self.first_mark is None or self.epoch[1] != total or done < self.epoch[0]:
            self.first_mark = (done, now)
        changed = self.epoch is None or self.epoch[:2] != (done, total)
        self.epoch = (done, total, unit)
        if self.bar is not None:
            self._show()
        elif changed and (self.last_line_at is None or done >= total
                          or now - self.last_line_at >= self.interval):
            self._line(self._where() + self._epoch_text())

    def tick(self):
        """Called every second or so while a cell runs: keeps the elapsed time current."""
        if self.cell is None:
            return
        if self.bar is not None:
            self.bar.refresh()
            return
        now = time.monotonic()
        quiet_since = self.last_line_at if self.last_line_at is not None else self.cell_started_at
        wait = self.interval if self.last_line_at is not None else self.long_cell
        if now - quiet_since >= wait:
            running = f" running for {tqdm.format_interval(self._cell_seconds())}"
            self._line(self._where() + (self._epoch_text() if self.epoch else running))

    def close(self):
        if self.bar is not None:
            self.bar.close()

    def _cell_seconds(self):
        return time.monotonic() - self.cell_started_at

    def _where(self):
        return f"cell {self.number}/{len(self.cells)} '{first_code_line(self.cell.source, 40)}'"

    def _epoch_text(self):
        if self.epoch is None:
            return ""
        done, total, unit = self.epoch
        text = f": {unit} {done}/{total}"
        left = self._seconds_left()
        return text + (f", about {tqdm.format_interval(left)} left" if left else "")

    def _seconds_left(self):
        done, total, _ = self.epoch
        first_done, first_at = self.first_mark
        now = time.monotonic()
        if done > first_done:
            # The first mark's unit (often slower: warm-up) is left out of the rate.
            per_unit = (now - first_at) / (done - first_done)
        elif done > 0:
            per_unit = (now - self.cell_started_at) / done
        else:
            return None
        return max(total - done, 0) * per_unit

    def _show(self):
        if self.bar is None or self.cell is None:
            return
        self.bar.status = (f"cell {self.number}/{len(self.cells)} "
                           f"'{first_code_line(self.cell.source, 24)}'{self._epoch_text()}")
        self.bar.refresh()

    def _line(self, text):
        now = time.monotonic()
        self.last_line_at = now
        elapsed = tqdm.format_interval(now - self.started)
        print(f"{self.label} [{elapsed}] {text}", file=self.stream, flush=True)


class KernelOutput:
    """Takes what the kernel process itself writes to stdout and stderr, off our console.

    That is ipykernel's log and a copy of the C-level output of the cells (TensorFlow's
    start-up lines, say), which ipykernel also puts into the notebook. Only the last
    lines are kept: they explain a kernel that dies or does not start.
    """

    def __init__(self, keep=40):
        self.lines = collections.deque(maxlen=keep)
        read_fd, self.write_fd = os.pipe()
        self._reader = threading.Thread(target=self._read, args=(read_fd,), daemon=True)
        self._reader.start()

    def _read(self, read_fd):
        with os.fdopen(read_fd, "rb") as pipe:
            for line in pipe:
                self.lines.append(strip_ansi(line.decode("utf-8", "replace")).rstrip())

    def launched(self):
        """Drop our copy of the pipe's write end once the kernel holds its own."""
        if self.write_fd is not None:
            os.close(self.write_fd)
            self.write_fd = None

    def tail(self):
        """The last lines, once the kernel has exited (or after a short wait)."""
        self.launched()
        self._reader.join(timeout=5)
        return "\n".join(line for line in self.lines if line.strip())


class ProgressClient(NotebookClient):
    """An nbclient NotebookClient that reports progress and remembers the failing cell.

    The kernel listens on Unix sockets in a private folder (``socket_dir``), not on
    TCP: ipykernel warns on its stderr, which is our console, about every kernel
    that serves unencrypted TCP, and local sockets need neither ports nor keys.
    """

    def __init__(self, nb, progress=None, socket_dir=None, kernel_output=None, **kw):
        super().__init__(nb, **kw)
        self.progress = progress
        self.socket_dir = socket_dir
        self.kernel_output = kernel_output
        self.current_cell = None
        self.error_reply = None
        self.on_cell_error = self._remember_error

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        if self.socket_dir is not None:
            km.transport = "ipc"
            # Absolute, because the kernel runs in the notebook's folder, not ours.
            km.ip = str(Path(self.socket_dir).resolve() / "kernel")
        return km

    async def async_start_new_kernel(self, **kwargs):
        if self.kernel_output is not None:
            kwargs.update(stdout=self.kernel_output.write_fd, stderr=self.kernel_output.write_fd)
        try:
            await super().async_start_new_kernel(**kwargs)
        finally:
            if self.kernel_output is not None:
                self.kernel_output.launched()

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if not any(cell is counted for counted in self.progress.cells):
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        self.current_cell = cell
        self.progress.cell_started(cell)
        ticker = asyncio.ensure_future(self._tick())
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        finally:
            ticker.cancel()
            self.progress.cell_finished()

    def process_message(self, msg, cell, cell_index):
        if msg["msg_type"] in ("display_data", "update_display_data"):
            mark = (msg["content"].get("metadata") or {}).get(PROGRESS_KEY)
            if isinstance(mark, dict):
                self.progress.mark(mark)
        return super().process_message(msg, cell, cell_index)

    async def _tick(self):
        while True:
            await asyncio.sleep(1)
            self.progress.tick()

    def _remember_error(self, cell, cell_index, execute_reply):
        self.error_reply = execute_reply["content"]


def _short_traceback(entries, frame_location):
    """IPython's traceback entries -> a few plain lines: frame headers, the line each
    frame stopped at, and the exception. ``frame_location`` rewrites cell frame headers."""
    frames, cell_frames = [], []
    for entry in entries[:-1]:
        lines = strip_ansi(entry).splitlines()
        if not lines or set(lines[0]) <= {"-"} or "Traceback (most recent call last)" in lines[0]:
            continue
        if _CELL_FRAME.match(lines[0].strip()):
            cell_frames.append(len(frames))
        header = frame_location(lines[0].strip())
        stopped = next((m.group(1).strip() for m in map(_ARROW_LINE.match, lines[1:]) if m), None)
        frames.append("  " + header + (f"\n    {stopped}" if stopped else ""))
    kept = _frames_to_keep(cell_frames, len(frames))
    shown, skipped = [], 0
    for index, frame in enumerate(frames):
        if index not in kept:
            skipped += 1
            continue
        if skipped:
            shown.append(f"  ... {skipped} frame{'s' * (skipped > 1)} left out ...")
            skipped = 0
        shown.append(frame)
    final = strip_ansi(entries[-1]).rstrip() if entries else ""
    return "\n".join(["Traceback (most recent call last):", *shown, final] if shown else [final])


def _frames_to_keep(cell_frames, count):
    """Indices of the frames worth showing: the failing cell's own, the innermost
    frames of the chapter's code, and the innermost frames of all."""
    innermost = TRACEBACK_FRAMES // 2
    return {0, *cell_frames[-innermost:], *range(max(count - innermost, 0), count)}


def describe_failure(error, client, notebook, chapter, tab):
    """The message for a failed run: chapter, tab and cell first, then a short traceback."""
    cell = client.current_cell
    if cell is None:
        hint = "; `make setup` registers the framework kernels" if isinstance(error, NoSuchKernel) else ""
        return f"{chapter}, tab {tab}: the {client.kernel_name!r} kernel failed to start ({error}){hint}"
    where = f"{chapter}, tab {tab}: the cell starting '{first_code_line(cell.source, 40)}'"
    if isinstance(error, CellTimeoutError):
        return f"{where} timed out\n{strip_ansi(str(error)).strip()}"
    if isinstance(error, DeadKernelError):
        return f"{where} killed the kernel ({error}); out of memory?"
    reply = client.error_reply or {}
    ename, evalue = reply.get("ename", error.ename), reply.get("evalue", error.evalue)
    headline = f"{where} raised {ename}"
    if evalue.strip():
        headline += f": {strip_ansi(evalue).strip().splitlines()[0]}"
    entries = reply.get("traceback") or []
    if not entries:
        return f"{headline}\n{strip_ansi(str(error)).strip()}"
    chapter_text = None
    chapter_file = REPO_ROOT / chapter
    if chapter_file.exists():
        chapter_text = chapter_file.read_text(encoding="utf-8")
    # "Cell In[n]" is the kernel's n-th execution, which nbclient numbers the same way.
    executed = notebook.cells[:next(i for i, c in enumerate(notebook.cells) if c is cell) + 1]
    by_count = {c.get("execution_count"): c for c in executed if c.cell_type == "code"}

    def frame_location(header):
        match = _CELL_FRAME.match(header)
        ran = by_count.get(int(match.group(1))) if match else None
        first = chapter_line(chapter_text, ran.source) if ran is not None else None
        if first is None:
            return header
        return f"{chapter}:{first + int(match.group(2)) - 1}{match.group(3)}"

    return f"{headline}\n{_short_traceback(entries, frame_location)}"


def _failure(error, client, notebook, chapter, tab, kernel_output):
    """The CellFailure to raise for ``error`` from nbclient, or None for an unexpected one."""
    kernel_failed = isinstance(error, DeadKernelError) or (
        client.current_cell is None and isinstance(error, (RuntimeError, NoSuchKernel)))
    if not (kernel_failed or isinstance(error, (CellExecutionError, CellTimeoutError))):
        return None
    message = describe_failure(error, client, notebook, chapter, tab)
    if kernel_failed and kernel_output.tail():
        message += f"\nThe kernel's last output:\n{kernel_output.tail()}"
    return CellFailure(message, getattr(error, "ename", type(error).__name__),
                       getattr(error, "evalue", str(error)))


def execute_notebook(source, target, timeout=1800, stream=None):
    """Run every cell of ``source`` and write the notebook with outputs to ``target``.

    Progress goes to ``stream`` (stderr by default). Returns the wall time in
    seconds. Raises CellFailure (naming the chapter, tab and cell, with a short
    traceback) if a cell fails; ``target`` is then left untouched.
    """
    source = Path(source)
    notebook = nbformat.read(source, as_version=4)
    kernel = notebook.metadata.get("kernelspec", {}).get("name")
    if not kernel:
        raise ValueError(f"{source} names no kernel in metadata.kernelspec.name")
    chapter, tab = chapter_of(source, notebook)
    # The kernel inherits this environment; an MPLBACKEND such as Agg there would
    # replace the inline backend and the notebook would lose all its figures.
    os.environ.pop("MPLBACKEND", None)
    # As `make` sets it: TensorFlow's start-up lines would otherwise land in the notebook.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    kernel_output = KernelOutput()
    # Unix sockets for the kernel where there are any (see ProgressClient); short
    # paths under the system temporary folder stay within the socket path limit.
    with tempfile.TemporaryDirectory(prefix="d2l-kernel-") as sockets:
        client = ProgressClient(notebook, socket_dir=sockets if os.name == "posix" else None,
                                kernel_output=kernel_output, timeout=timeout, kernel_name=kernel,
                                resources={"metadata": {"path": str(source.parent)}})
        client.progress = Progress(f"{chapter.stem} [{tab}]",
                                   _code_cells(notebook, client.skip_cells_with_tag),
                                   sys.stderr if stream is None else stream)
        started = time.perf_counter()
        try:
            client.execute()
        except Exception as error:
            client.progress.close()
            # nbclient leaves its clean-up registered when the kernel failed to start; it would fail at exit.
            atexit.unregister(client._cleanup_kernel)
            failure = _failure(error, client, notebook, chapter, tab, kernel_output)
            if failure is None:
                raise
            raise failure from None
        finally:
            kernel_output.launched()
        client.progress.close()
        elapsed = time.perf_counter() - started
    # Always rewritten (even if unchanged), so make sees it newer than its sources.
    write_text_atomically(target, nbformat.writes(notebook) + "\n")
    return elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)
    try:
        elapsed = execute_notebook(args.notebook, args.out, args.timeout)
    except CellFailure as err:
        print(f"{err}\n({args.notebook} failed; {args.out} was not written)", file=sys.stderr)
        return 1
    print(f"executed {args.notebook} -> {args.out} in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
