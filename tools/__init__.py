"""Build tools for the book: splitting chapters into notebooks, stored reference outputs.

This package file holds only what several tools share and imports nothing beyond
the standard library and ``d2l_shim`` (whose package file imports no framework),
so every script under ``tools/`` stays cheap to start.
"""
from pathlib import Path

#: Framework names as used in ``#@tab`` tags, kernel names and notebook folders
#: (defined once, by the shim; importing the package imports no framework).
from d2l_shim import FRAMEWORKS  # noqa: F401
from d2l_shim.files import write_atomically


def write_text_if_changed(path, text):
    """Write ``text`` to ``path`` atomically unless the file already holds exactly that.

    Returns True when the file was (re)written. Leaving an unchanged file alone keeps
    its modification time, so ``make`` does not rebuild what depends on it.
    """
    try:
        if Path(path).read_bytes() == text.encode("utf-8"):
            return False
    except FileNotFoundError:
        pass
    write_text_atomically(path, text)
    return True


def write_text_atomically(path, text):
    """Write ``text`` to ``path`` (UTF-8) so that a reader never sees a half-written file."""
    write_atomically(path, lambda file: file.write(text.encode("utf-8")))
