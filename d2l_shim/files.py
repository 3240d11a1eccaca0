"""Files that appear whole or not at all, and their sha1: the one place for both."""
import hashlib
import os
import secrets

_CHUNK_BYTES = 1 << 20


def write_atomically(path, write):
    """Call ``write(file)`` on a new binary file beside ``path``, then move it over ``path``.

    A reader sees the old file or the new one, never half of one: if ``write``
    or the move fails (an interrupt included), the temporary file is removed
    and ``path`` is left as it was. ``file.name`` is the temporary file's path.
    The file gets the permissions a plain ``open()`` gives under the umask
    (``tempfile.mkstemp`` would make it private), and it and the rename are
    synced to disk, so a crash leaves no empty file behind the new name.
    """
    path = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.lexists(temporary):
            os.remove(temporary)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder):
    """Make a rename in ``folder`` durable; a no-op where folders cannot be synced."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def sha1_of_file(path):
    """The sha1 hex digest of the file at ``path``, as ``DATA_HUB`` records it."""
    digest = hashlib.sha1()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()
