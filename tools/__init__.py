"""Build tools for the book: splitting chapters into notebooks, stored reference outputs.

This package file holds only what several tools share and imports nothing beyond
the standard library and ``d2l_shim`` (whose package file imports no framework),
so every script under ``tools/`` stays cheap to start.
"""
import os
import secrets
from pathlib import Path

#: Framework names as used in ``#@tab`` tags, kernel names and notebook folders
#: (defined once, by the shim; importing the package imports no framework).
from d2l_shim import FRAMEWORKS  # noqa: F401


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
    """Write ``text`` to ``path`` (UTF-8) so that a reader never sees a half-written file.

    The text goes to a temporary file in the same folder first and is then moved
    over the target with ``os.replace``; on any failure (an interrupt included)
    the temporary file is removed and an existing ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open with mode 0o666 lets the umask decide the final permissions, as a
    # plain open() would; tempfile.mkstemp would leave the file private (0o600).
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(text.encode("utf-8"))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
