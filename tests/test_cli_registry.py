"""`labkit gates`, `labkit strategies` and `labkit sources`: what is registered, and where from."""

from __future__ import annotations

import json

import pytest

from labkit.cli import main
from tests import stubs
from tests.test_plugins import _install


def _json(capsys, command: str) -> list[dict]:
    assert main([command, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_gates_when_json_lists_order_proposals_reasons_and_config_defaults(capsys):
    # Act
    gates = {gate["name"]: gate for gate in _json(capsys, "gates")}
    # Assert
    assert [g["order"] for g in gates.values()] == sorted(g["order"] for g in gates.values())
    data = gates["data"]
    assert (data["origin"], data["applies_to"]) == ("labkit", ["BUY", "SELL", "HOLD"])
    assert "stale_data" in data["reasons"] and data["summary"]
    assert {
        "key": "gates.data.stale_after_bars",
        "default": 2.0,
        "required": False,
        "description": "a bar older than this many bars is stale",
    } in data["config"]
    assert gates["guardrails"]["reasons"] == ["daily_loss_limit", "drawdown_limit", "loss_streak"]
    assert gates["halt"]["config"] == []


def test_gates_when_text_shows_each_gate_with_its_keys(capsys):
    assert main(["gates"]) == 0
    out = capsys.readouterr().out
    assert "turnover  (order 60, from labkit)" in out
    assert "reasons: edge_below_cost, max_daily_trades" in out
    assert "gates.turnover.max_daily = 10" in out


def test_strategies_when_json_lists_parameters_with_defaults(capsys):
    strategies = {s["name"]: s for s in _json(capsys, "strategies")}
    sma = strategies["sma_cross"]
    assert sma["origin"] == "labkit" and sma["description"]
    assert [(p["key"], p["default"]) for p in sma["parameters"]] == [
        ("strategies.sma_cross.fast", 10),
        ("strategies.sma_cross.slow", 30),
    ]


def test_sources_when_json_gives_the_spec_to_write(capsys):
    sources = {s["kind"]: s for s in _json(capsys, "sources")}
    assert sources["ccxt"]["spec"] == "ccxt:EXCHANGE" and sources["ccxt"]["argument"] == "EXCHANGE"
    assert sources["yfinance"]["spec"] == "yfinance" and sources["yfinance"]["argument"] is None
    assert all(s["origin"] == "labkit" and s["description"] for s in sources.values())


def test_sources_when_text_lines_up_spec_origin_and_description(capsys):
    assert main(["sources"]) == 0
    out = capsys.readouterr().out
    assert any(line.startswith("csv:PATH") and "(from labkit)" in line for line in out.splitlines())


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _install(tmp_path_factory.mktemp("plugin"))


@pytest.mark.parametrize(
    ("command", "key", "name"),
    [("gates", "name", "odd_minute"), ("strategies", "name", "every_n"), ("sources", "kind", "ramp")],
)
def test_registry_when_a_plugin_is_installed_names_its_package(tmp_path, plugin_env, command, key, name):
    # Act
    done = stubs.run_labkit(tmp_path, command, "--json", env=plugin_env)
    # Assert
    assert done.returncode == 0, done.stderr
    found = {item[key]: item for item in json.loads(done.stdout)}
    assert found[name]["origin"] == "labkit_plugin_demo"


def test_registry_when_a_plugin_gate_is_listed_shows_its_config_and_place(tmp_path, plugin_env):
    done = stubs.run_labkit(tmp_path, "gates", env=plugin_env)
    assert done.returncode == 0, done.stderr
    assert "odd_minute  (order 65, from labkit_plugin_demo)" in done.stdout
    assert "gates.odd_minute.modulus = 2" in done.stdout
    # In chain order: after turnover (60), before risk_budget (70)
    assert done.stdout.index("turnover") < done.stdout.index("odd_minute") < done.stdout.index("risk_budget")


def test_source_help_when_a_plugin_is_installed_lists_its_kind(tmp_path, plugin_env):
    done = stubs.run_labkit(tmp_path, "backtest", "--help", env=plugin_env)
    assert done.returncode == 0, done.stderr
    assert "ramp" in done.stdout
