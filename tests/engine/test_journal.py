"""Reading the decision journal back: every complete line, typed, and a clear error for a bad one."""

from __future__ import annotations

import orjson
import pandas as pd
import pytest

from labkit.engine.journal import COLUMNS, FIELDS, JournalError, LineEncoder, line_fills, read_journal


def _lines(n: int, start: int = 0) -> list[bytes]:
    encoder = LineEncoder("s", "paper", "BTC/USDT", "1m", "sma_cross-10-30", "run")
    out = []
    for seq in range(start, start + n):
        fill = None
        if seq == 2:
            fill = {"side": "BUY", "units": 1.5, "price": 100.0, "fee": 0.15, "slippage_cost": 0.0,
                    "order_seq": 1, "pnl": None, "cash_flow": -150.15, "reason": "signal"}  # fmt: skip
        trace = {"stage": "turnover", "reason": "max_daily_trades", "detail": {"today": 10, "limit": 10}}
        line = encoder.line(
            seq=seq, ts=f"2026-01-05T00:{seq:02d}:00Z", decided_at=f"2026-01-05T00:{seq:02d}:00.5Z", price=100.0 + seq,
            proposed="BUY" if seq % 2 else "HOLD", action="HOLD", confidence=None,
            trace=trace if seq % 2 else {"stage": "passed", "reason": None, "detail": {}},
            fill=fill, position=0.0, cash=1000.0, equity=1000.0,
        )  # fmt: skip
        out.append(encoder.encode(line))
    return out


def test_read_journal_when_read_whole_returns_every_field_with_dicts_and_flat_columns(tmp_path):
    # Arrange
    path = tmp_path / "decisions.jsonl"
    path.write_bytes(b"".join(_lines(5)))
    # Act
    frame = read_journal(path)
    # Assert
    assert list(frame.columns) == list(COLUMNS) and set(FIELDS) <= set(frame.columns)
    assert frame["seq"].tolist() == [0, 1, 2, 3, 4]
    assert str(frame["ts"].dt.tz) == "UTC" and frame["ts"].iloc[1] - frame["ts"].iloc[0] == pd.Timedelta(
        minutes=1
    )
    assert frame["gate_trace"].iloc[1] == {
        "stage": "turnover",
        "reason": "max_daily_trades",
        "detail": {"today": 10, "limit": 10},
    }
    assert frame["gate_trace"].iloc[0] == {"stage": "passed", "reason": None, "detail": {}}
    assert frame["fill"].iloc[2]["reason"] == "signal" and frame["fill"].iloc[0] is None
    assert frame["fill_units"].iloc[2] == 1.5 and frame["fill_side"].iloc[2] == "BUY"
    assert frame["fill_order_seq"].iloc[2] == 1 and frame["fill_pnl"].isna().all()
    assert frame["reason"].iloc[1] == "max_daily_trades" and frame["stage"].iloc[0] == "passed"


_ENTRY = {"side": "BUY", "units": 2.0, "price": 100.0, "fee": 0.2, "slippage_cost": 0.0, "order_seq": 0,
          "pnl": None, "cash_flow": -200.2, "reason": "signal", "stop_price": 98.0}  # fmt: skip
_STOPPED = {"side": "SELL", "units": 2.0, "price": 98.0, "fee": 0.196, "slippage_cost": 0.0, "order_seq": 1,
            "pnl": -4.396, "cash_flow": 195.804, "reason": "stop_loss"}  # fmt: skip


def _two_fill_journal(path) -> list[dict]:
    # Three lines: a decision, the entry's bar that was stopped on its own range, a quiet bar.
    encoder = LineEncoder("s", "paper", "BTC/USDT", "1m", "m", "run")
    passed = {"stage": "passed", "reason": None, "detail": {}}
    lines = [
        encoder.line(
            seq=seq, ts=f"2026-01-05T00:0{seq}:00Z", decided_at="2026-01-05T00:05:00.000Z", price=99.0,
            proposed="BUY" if seq == 0 else "HOLD", action="BUY" if seq == 0 else "HOLD", confidence=None,
            trace=passed, fill=_ENTRY if seq == 1 else None, position=0.0, cash=995.608, equity=995.608,
            exit_fill=_STOPPED if seq == 1 else None,
        )
        for seq in range(3)
    ]  # fmt: skip
    path.write_bytes(b"".join(encoder.encode(line) for line in lines))
    return lines


def test_journal_when_a_line_has_two_fills_exit_fill_follows_fill_and_only_there(tmp_path):
    # Arrange / Act
    lines = _two_fill_journal(tmp_path / "d.jsonl")
    # Assert: the other lines keep exactly the fields they always had
    assert list(lines[1]) == [
        *FIELDS[: FIELDS.index("fill") + 1],
        "exit_fill",
        *FIELDS[FIELDS.index("fill") + 1 :],
    ]
    assert tuple(lines[0]) == FIELDS and tuple(lines[2]) == FIELDS
    assert line_fills(lines[1]) == [_ENTRY, _STOPPED] and line_fills(lines[0]) == []


def test_read_journal_when_a_line_has_two_fills_returns_both_dicts_and_flat_columns(tmp_path):
    # Arrange
    path = tmp_path / "d.jsonl"
    _two_fill_journal(path)
    # Act
    frame = read_journal(path)
    picked = read_journal(path, ["exit_fill_side", "exit_fill_pnl"])
    # Assert
    assert frame["fill"].iloc[1] == _ENTRY and frame["exit_fill"].iloc[1] == _STOPPED
    assert frame["exit_fill"].iloc[0] is None and frame["exit_fill"].iloc[2] is None
    assert frame["fill_side"].iloc[1] == "BUY" and frame["exit_fill_side"].iloc[1] == "SELL"
    assert frame["exit_fill_order_seq"].iloc[1] == 1 and frame["exit_fill_pnl"].iloc[1] == -4.396
    assert picked["exit_fill_side"].fillna("-").tolist() == ["-", "SELL", "-"]


def test_read_journal_when_no_line_has_two_fills_the_exit_fill_columns_are_empty(tmp_path):
    path = tmp_path / "decisions.jsonl"
    path.write_bytes(b"".join(_lines(4)))
    frame = read_journal(path)
    assert frame["exit_fill"].tolist() == [None] * 4 and frame["exit_fill_side"].isna().all()


def test_read_journal_when_given_a_string_path_reads_it_as_a_path(tmp_path):
    # A notebook user writes the path as text.
    path = tmp_path / "decisions.jsonl"
    path.write_bytes(b"".join(_lines(3)))
    assert read_journal(str(path))["seq"].tolist() == [0, 1, 2]


def test_read_journal_when_asked_for_columns_returns_only_those_in_that_order(tmp_path):
    # Arrange
    path = tmp_path / "decisions.jsonl"
    path.write_bytes(b"".join(_lines(4)))
    # Act
    frame = read_journal(path, ["reason", "proposed", "fill_fee"])
    # Assert
    assert list(frame.columns) == ["reason", "proposed", "fill_fee"]
    assert frame["fill_fee"].iloc[2] == pytest.approx(0.15)


def test_read_journal_when_asked_for_an_unknown_column_names_it_and_the_allowed(tmp_path):
    # Arrange
    path = tmp_path / "decisions.jsonl"
    path.write_bytes(b"".join(_lines(2)))
    # Act
    with pytest.raises(ValueError, match=r"columns: pnl not in the journal; allowed: schema, session"):
        read_journal(path, ["seq", "pnl"])


@pytest.mark.parametrize("torn", [b'{"schema":1,"seq":3,"ts":"2026-01-05T00:', b'{"schema":1,"seq":3}'])
def test_read_journal_when_the_last_line_is_torn_leaves_it_out(tmp_path, torn):
    # Arrange: a crash mid-write, cut inside the line or just before its newline
    path = tmp_path / "decisions.jsonl"
    path.write_bytes(b"".join(_lines(3)) + torn)
    # Act
    frame = read_journal(path)
    # Assert
    assert frame["seq"].tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("bad", "message"),
    [(b"not json at all\n", "line 3 is not JSON"), (b'[1, 2]\n', "line 3 is not a decision line"),
     (b'{"seq": "two"}\n', "line 3 is not a decision line")],
)  # fmt: skip
def test_read_journal_when_a_middle_line_is_corrupt_names_the_line(tmp_path, bad, message):
    # Arrange
    lines = _lines(5)
    path = tmp_path / "decisions.jsonl"
    path.write_bytes(b"".join(lines[:2]) + bad + b"".join(lines[3:]))
    # Act / Assert
    with pytest.raises(JournalError, match=message):
        read_journal(path)


def test_read_journal_when_runs_are_appended_keeps_every_run(tmp_path):
    # Arrange: a backtest journal holds one run after another, each from seq 0
    path = tmp_path / "decisions.jsonl"
    path.write_bytes(b"".join(_lines(3)) + b"".join(_lines(2)))
    # Act
    frame = read_journal(path, ["seq"])
    # Assert
    assert frame["seq"].tolist() == [0, 1, 2, 0, 1]


@pytest.mark.parametrize("name", ["week[1].jsonl", "a*b?.jsonl", "it's.jsonl", "ünï cødé.jsonl"])
def test_read_journal_when_the_file_name_looks_like_a_glob_reads_that_file_only(tmp_path, name):
    # Arrange: a sibling a glob would also match
    (tmp_path / "week1.jsonl").write_bytes(b"".join(_lines(7)))
    (tmp_path / "aXbY.jsonl").write_bytes(b"".join(_lines(7)))
    path = tmp_path / name
    path.write_bytes(b"".join(_lines(2)))
    # Act
    frame = read_journal(path, ["seq"])
    # Assert
    assert frame["seq"].tolist() == [0, 1]


@pytest.mark.parametrize("content", [None, b"", b'{"schema":1,"seq":0'])
def test_read_journal_when_missing_empty_or_only_torn_returns_an_empty_frame_with_the_columns(
    tmp_path, content
):
    # Arrange
    path = tmp_path / "decisions.jsonl"
    if content is not None:
        path.write_bytes(content)
    # Act
    frame = read_journal(path)
    # Assert
    assert frame.empty and list(frame.columns) == list(COLUMNS)
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"


def test_read_journal_when_a_line_has_unknown_keys_keeps_the_known_ones(tmp_path):
    # Arrange: a newer writer may add fields; an older reader must still read the line
    line = orjson.loads(_lines(1)[0])
    line["venue_latency_ms"] = 12
    path = tmp_path / "decisions.jsonl"
    path.write_bytes(orjson.dumps(line) + b"\n")
    # Act
    frame = read_journal(path)
    # Assert
    assert frame["seq"].tolist() == [0] and "venue_latency_ms" not in frame
