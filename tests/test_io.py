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


def test_write_atomic_when_done_replaces_whole_file_with_usual_permissions(tmp_path):
    path = tmp_path / "out" / "bars.parquet"
    _io.write_atomic(path, b"abc")
    _io.write_atomic(path, lambda handle: handle.write(b"defg"))
    umask = os.umask(0)
    os.umask(umask)
    assert path.read_bytes() == b"defg"
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


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
