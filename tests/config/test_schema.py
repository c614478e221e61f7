from __future__ import annotations

import pytest

from labkit.config.loading import load_config, redacted
from labkit.errors import ConfigError


def _home(tmp_path, text):
    (tmp_path / "labkit.yaml").write_text(text)
    return tmp_path


def test_load_config_when_nothing_given_uses_defaults():
    config = load_config(None, {}, environ={})
    assert (config.session.mode, config.session.capital, config.gates.turnover.min_ratio) == (
        "paper",
        10_000.0,
        2.0,
    )
    assert config.gates.enabled == (
        "halt",
        "data",
        "model",
        "confidence",
        "meta",  # opt-in: in the chain only with gates.meta.model (--meta)
        "scalping",
        "turnover",
        "risk_budget",
        "open_positions",
        "portfolio_heat",
        "correlation",
        "guardrails",
    )


def test_load_config_when_all_layers_set_flags_beat_env_beat_file(tmp_path):
    # Arrange
    home = _home(tmp_path, "session:\n  capital: 1000\n  symbol: ETH/USDT\nbroker:\n  fee: 0.003\n")
    environ = {"LABKIT_SESSION__CAPITAL": "2000", "LABKIT_BROKER__FEE": "0.002"}
    # Act
    config = load_config(home, {"session.capital": 3000.0}, environ=environ)
    # Assert
    assert config.session.capital == 3000.0  # flag
    assert config.broker.fee == 0.002  # env over file
    assert config.session.symbol == "ETH/USDT"  # file over default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("session:\n  capitol: 5\n", r"session.capitol: unknown key; allowed: name, mode"),
        ("session:\n  capital: -5\n", r"session.capital: Input should be greater than 0 \(got -5\)"),
        ("gates:\n  turnover:\n    max_daily: 0\n", r"gates.turnover.max_daily: Input should be greater"),
        ("broker:\n  fee: lots\n", r"broker.fee: Input should be a valid number"),
        ("session:\n  mode: live\n", r"session.mode: live trading does not exist"),
        ("gates:\n  enabled: [halt, vibes]\n", r"gates.enabled: unknown gate 'vibes'"),
        ("session: [1, 2]\n", r"session: Input should be a valid dictionary"),
        ("strategies:\n  sma_cross:\n    fast: 30\n    slow: 10\n", r"strategies.sma_cross: .*slow \(10\) must be greater than fast \(30\)"),
        (": : :\n", r"not valid YAML"),
    ],
)
def test_load_config_when_file_is_bad_names_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_home(tmp_path, text), {}, environ={})


def test_load_config_when_env_names_unknown_section_refuses():
    with pytest.raises(ConfigError, match="LABKIT_BROKR__FEE: not a labkit setting"):
        load_config(None, {}, environ={"LABKIT_BROKR__FEE": "0.1"})


@pytest.mark.parametrize(("mode", "expected"), [("paper", (3.5, 4)), ("shadow", (2.0, 10))])
def test_load_config_when_paper_overrides_set_apply_to_paper_only(mode, expected):
    environ = {"LABKIT_PAPER_MIN_RATIO": "3.5", "LABKIT_PAPER_MAX_DAILY": "4"}
    config = load_config(None, {"session.mode": mode}, environ=environ)
    assert (config.gates.turnover.min_ratio, config.gates.turnover.max_daily) == expected


def test_load_config_when_secret_variable_unset_names_key_and_variable(tmp_path):
    home = _home(tmp_path, "exchanges:\n  binance:\n    apiKey: ${BINANCE_KEY}\n")
    with pytest.raises(ConfigError, match=r"exchanges.binance.apiKey: refers to \$\{BINANCE_KEY\}.*not set"):
        load_config(home, {}, environ={})


def test_redacted_when_secrets_configured_keeps_only_last_four(tmp_path):
    home = _home(
        tmp_path,
        "exchanges:\n  binance:\n    apiKey: ${BINANCE_KEY}\n    secret: s3cr3tvalue9876\n"
        "    timeout: 3000\n",
    )
    config = load_config(home, {}, environ={"BINANCE_KEY": "abcdefgh1234"})
    assert config.exchanges["binance"]["apiKey"] == "abcdefgh1234"
    shown = redacted(config)["exchanges"]["binance"]
    assert shown == {"apiKey": "****1234", "secret": "****9876", "timeout": 3000}


def test_load_config_when_exchange_keys_come_from_env_keeps_ccxt_names():
    config = load_config(None, {}, environ={"LABKIT_EXCHANGES__BINANCE__APIKEY": "k1234", "LABKIT_EXCHANGES__BINANCE__TIMEOUT": "3000"})
    assert config.exchanges["binance"] == {"apiKey": "k1234", "timeout": 3000}


def test_load_config_when_paper_overrides_set_and_mode_left_default_applies_them():
    # Regression: with no session key anywhere the default mode is paper, and the overrides were lost.
    environ = {"LABKIT_PAPER_MIN_RATIO": "3.5", "LABKIT_PAPER_MAX_DAILY": "4"}
    config = load_config(None, {}, environ=environ)
    assert (config.gates.turnover.min_ratio, config.gates.turnover.max_daily) == (3.5, 4)  # type: ignore[attr-defined]


@pytest.mark.parametrize("symbol", ["..", ".", "/", "-", "~"])
def test_session_symbol_when_only_dots_or_separators_is_refused_by_name(symbol):
    # Issue 19: the symbol `..` wrote outside bars/ in a sweep; no market is spelt that way
    with pytest.raises(ConfigError, match=r"session\.symbol.*needs a letter or a digit"):
        load_config(None, {"session.symbol": symbol}, environ={})


def test_serve_forwarded_header_when_not_a_header_name_is_refused():
    with pytest.raises(ConfigError, match=r"serve\.forwarded_header"):
        load_config(None, {"serve.forwarded_header": "X Forwarded: for"}, environ={})
