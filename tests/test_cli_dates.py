"""Times given on the command line: unambiguous forms only, and ages read at a glance."""

from __future__ import annotations

import pytest

from labkit.cli import main
from labkit.errors import ConfigError
from labkit.timeutil import ago, human_duration, parse_instant
from tests.stubs import T0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-05", T0),
        ("2026-01-05T00:00:00Z", T0),
        ("2026-01-05T00:00", T0),
        ("2026-01-05 00:00:00+00:00", T0),
        ("2026-01-05T01:00:00+01:00", T0),
        ("2026-01-04T19:00:00-05:00", T0),
        ("2026-01-05T00:00:00.250Z", T0 + 250),
        ("1767571200000", T0),
    ],
)
def test_parse_instant_when_iso_8601_or_epoch_ms_returns_epoch_ms(text, expected):
    assert parse_instant(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("05/01/2026", "is ambiguous"),
        ("01.05.2026", "is ambiguous"),
        ("2026/01/05", "is ambiguous"),
        ("1767571200", "looks like epoch seconds"),
        ("176757120", "looks like epoch seconds"),
        ("17675712000", "looks like epoch seconds"),
        ("next week", "is not a time"),
    ],
)
def test_parse_instant_when_ambiguous_refuses_with_the_accepted_forms(text, why):
    with pytest.raises(ConfigError) as exc:
        parse_instant(text, "session.since")
    message = str(exc.value)
    assert message.startswith(f"session.since: {text!r} {why}")
    assert all(form in message for form in ("2026-01-05", "2026-01-05T09:30:00Z", "1767571200000"))


@pytest.mark.parametrize("flag", ["--since", "--until"])
@pytest.mark.parametrize("value", ["05/01/2026", "1767571200"])
def test_backtest_when_a_time_is_ambiguous_exits_2_naming_the_flag(tmp_path, capsys, flag, value):
    # Arrange: the other end of the range is valid
    other = {"--since": ["--until", "2026-02-01"], "--until": ["--since", "2026-01-01"]}[flag]
    # Act
    code = main(["--home", str(tmp_path), "backtest", flag, value, *other])
    # Assert
    err = capsys.readouterr().err
    assert code == 2
    assert f"session.{flag[2:]} ({flag}): {value!r}" in err
    assert "epoch milliseconds (1767571200000)" in err
    assert list(tmp_path.iterdir()) == []


def test_backtest_when_until_has_an_offset_converts_it_to_utc(tmp_path, capsys):
    # 03:00+01:00 is 02:00 UTC: two hours of minute bars
    code = main(
        ["--home", str(tmp_path), "backtest", "--since", "2026-01-05", "--until", "2026-01-05T03:00+01:00", "--json"]
    )
    assert code == 0
    assert '"bars": 120' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (12.7, "12 s"), (89, "89 s"), (90, "1 min"), (180, "3 min"), (5_399, "89 min"),
     (5_400, "1 h"), (7_200, "2 h"), (47 * 3_600, "47 h"), (4 * 86_400, "4 d"), (-3, "0 s")],
)
def test_human_duration_when_given_seconds_picks_a_readable_unit(seconds, text):
    assert human_duration(seconds) == text


def test_ago_when_given_an_instant_counts_back_from_now():
    assert ago("2026-01-05T00:00:00Z", now=T0 + 2 * 3_600_000) == "2 h ago"
    assert ago(T0, now=T0 + 12_000) == "12 s ago"
