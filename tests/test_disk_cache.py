"""tilefn.disk_cache: atomic cache files; an unusable root answers None / False with one warning per root."""
from __future__ import annotations

import logging

import pytest

from tilefn import disk_cache


@pytest.fixture
def under_a_file(tmp_path):
    """A root no one can create, root included: its parent is a regular file."""
    (tmp_path / "file").write_text("")
    return tmp_path / "file" / "cache"


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_written_text_reads_back_and_no_temporary_file_is_left(tmp_path, caplog):
    assert disk_cache.read(tmp_path, "src/a.py") is None  # missing: no warning
    assert disk_cache.write(tmp_path, "src/a.py", "x = 1\n")
    assert disk_cache.write(tmp_path, "src/a.py", "x = 2\n")  # replaced
    assert disk_cache.read(tmp_path, "src/a.py") == "x = 2\n"
    assert [p.name for p in (tmp_path / "src").iterdir()] == ["a.py"]
    assert warnings_of(caplog) == []


def test_an_unusable_root_warns_once_and_fails_nothing(under_a_file, caplog):
    for i in range(3):
        assert not disk_cache.write(under_a_file, f"tune/{i}.json", "{}")
        assert disk_cache.read(under_a_file, f"tune/{i}.json") is None
    (message,) = warnings_of(caplog)
    assert str(under_a_file) in message and "working without it" in message


def test_each_unusable_root_is_named_once(tmp_path, caplog):
    (tmp_path / "file").write_text("")
    for root in [tmp_path / "file" / "a", tmp_path / "file" / "b", tmp_path / "file" / "a"]:
        disk_cache.write(root, "x", "")
    assert len(warnings_of(caplog)) == 2


def test_undecodable_bytes_read_as_replacement_characters(tmp_path):
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe{")
    assert disk_cache.read(tmp_path, "bad.json") == "\ufffd\ufffd{"


def test_an_entry_that_cannot_be_read_warns(tmp_path, caplog):
    (tmp_path / "entry.json").mkdir()  # reading a directory fails (as an unreadable file does for non-root users)
    assert disk_cache.read(tmp_path, "entry.json") is None
    assert len(warnings_of(caplog)) == 1
