"""The only atomic write and the JSON Lines helpers: nothing half-written survives a failure."""

from __future__ import annotations

import errno
import os

import pytest

from labkit import _io


def test_write_atomic_when_writer_fails_midway_keeps_the_old_file_and_no_temp(tmp_path):
    # Arrange
    path = tmp_path / "state.json"
    _io.write_json_atomic(path, {"old": True})

    def disk_full(handle):
        handle.write(b'{"new": tr')
        raise OSError(errno.ENOSPC, "No space left on device")

    # Act
    with pytest.raises(OSError, match="No space left"):
        _io.write_atomic(path, disk_full)
    # Assert
    assert _io.read_json(path) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_private_files_when_written_are_0600_in_0700_folders_whatever_the_umask(tmp_path, umask):
    # Arrange
    previous = os.umask(umask)
    try:
        # Act
        _io.write_atomic(tmp_path / "a" / "state.json", b"abc")
        _io.write_atomic(tmp_path / "a" / "state.json", lambda handle: handle.write(b"defg"))
        with _io.open_append(tmp_path / "a" / "decisions.jsonl") as handle:
            handle.write(b"{}\n")
        _io.append_line(tmp_path / "a" / "control.jsonl", b"{}\n")
        _io.make_private_dir(tmp_path / "b" / "c")
        _io.write_atomic(tmp_path / "page.html", b"<p>", mode=0o644)
    finally:
        os.umask(previous)
    # Assert
    mode = lambda p: (tmp_path / p).stat().st_mode & 0o777  # noqa: E731
    assert (tmp_path / "a" / "state.json").read_bytes() == b"defg"
    assert [mode(f"a/{n}") for n in ("state.json", "decisions.jsonl", "control.jsonl")] == [0o600] * 3
    assert mode("a") == 0o700 and mode("b/c") == 0o700
    assert mode("page.html") == 0o644


def test_append_line_when_the_kernel_writes_short_finishes_the_line(tmp_path, monkeypatch):
    # Arrange: a write that takes one byte at a time (as a nearly full disk can)
    real_write = os.write
    monkeypatch.setattr(_io.os, "write", lambda fd, data: real_write(fd, bytes(data[:1])))
    path = tmp_path / "control.jsonl"
    # Act
    size = _io.append_line(path, b'{"command":"emergency_stop"}\n')
    _io.append_line(path, b'{"command":"resume"}\n')
    # Assert
    assert size == len(b'{"command":"emergency_stop"}\n')
    assert [line["command"] for line in _io.iter_lines(path)] == ["emergency_stop", "resume"]


def test_open_append_when_last_line_is_torn_cuts_it_and_keeps_the_rest(tmp_path, caplog):
    path = tmp_path / "tape.jsonl"
    path.write_bytes(b'{"a":1}\n{"b":2}\n{"c":')
    with _io.open_append(path) as handle:
        handle.write(b'{"d":4}\n')
    assert [list(x) for x in _io.iter_lines(path)] == [["a"], ["b"], ["d"]]
    assert "torn last line" in caplog.text
