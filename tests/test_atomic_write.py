"""tools.write_text_atomically / write_text_if_changed (on d2l_shim.files.write_atomically):
how every build tool writes its outputs (split and executed notebooks, book pages)."""
import os

import pytest

from d2l_shim import files
from tools import write_text_atomically, write_text_if_changed


def leftovers(folder):
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp"))


def test_writes_the_text_with_the_permissions_of_a_plain_open(tmp_path):
    target = tmp_path / "deeper" / "page.ipynb"
    old_umask = os.umask(0o022)
    try:
        write_text_atomically(target, "naïve {}\n")
    finally:
        os.umask(old_umask)
    assert target.read_text(encoding="utf-8") == "naïve {}\n"
    assert target.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0o600
    assert leftovers(target.parent) == []


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "page.ipynb"
    target.write_text("finished\n")

    def interrupted(source, destination):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomically(target, "half")
    assert target.read_text() == "finished\n"
    assert leftovers(tmp_path) == []


def test_an_unchanged_text_is_not_rewritten(tmp_path):
    target = tmp_path / "page.md"
    assert write_text_if_changed(target, "one\n") is True
    os.utime(target, (1_000_000, 1_000_000))  # make a rewrite visible in the mtime
    assert write_text_if_changed(target, "one\n") is False
    assert target.stat().st_mtime == 1_000_000
    assert write_text_if_changed(target, "two\n") is True
    assert target.read_text() == "two\n"
