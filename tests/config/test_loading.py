"""labkit.yaml is read by a strict loader: hostile or ambiguous YAML is refused with the file and line."""

from __future__ import annotations

import time

import pytest

from labkit.cli import main
from labkit.config.loading import MAX_YAML_BYTES, load_config
from labkit.errors import ConfigError


def _home(tmp_path, text: str | bytes):
    path = tmp_path / "labkit.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return tmp_path


def _laughs(depth: int = 9, width: int = 10) -> str:
    # The "billion laughs": each level repeats the one below `width` times, width**depth in all.
    lines = ['lol0: &lol0 "lol"']
    for i in range(1, depth + 1):
        lines.append(f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * width)}]")
    return "exchanges:\n" + "".join(f"  {line}\n" for line in lines)


def _laughs_by_merge(depth: int = 9) -> str:
    # The same through merge keys: each mapping merges the one below under ten names.
    lines = ["exchanges:", "  m0: &m0 {a: lol, b: lol, c: lol, d: lol, e: lol, f: lol, g: lol, h: lol}"]
    for i in range(1, depth + 1):
        keys = ", ".join(f"k{j}: *m{i - 1}" for j in range(10))
        lines.append(f"  m{i}: &m{i} {{<<: *m{i - 1}, {keys}}}")
    return "\n".join(lines) + "\n"


def _nested_flow(levels: int, open_: str = "[", close: str = "]") -> str:
    return "exchanges:\n  binance:\n    options: " + open_ * levels + close * levels + "\n"


def _nested_flow_maps(levels: int) -> str:
    return "exchanges:\n  binance:\n    options: " + "{a: " * levels + "1" + "}" * levels + "\n"


def _nested_block(levels: int) -> str:
    return "".join("  " * i + f"k{i}:\n" for i in range(levels)) + "  " * levels + "v\n"


def _nested_block_lists(levels: int) -> str:
    return "exchanges:\n  binance:\n    options:\n      x:\n" + "".join(
        "        " + "  " * i + "-\n" for i in range(levels)
    )


# (case, text, what the message must say after "<file>: line N: ")
HOSTILE = [
    ("billion laughs, 9 levels of 10", _laughs(9, 10), r"line 5: aliases are limited: \*lol2"),
    ("billion laughs, 9 levels of 2", _laughs(30, 2), r"aliases are limited"),
    ("billion laughs through merge keys", _laughs_by_merge(9), r"aliases are limited"),
    ("one big anchor aliased many times", "exchanges:\n  a: &a {" + ", ".join(f"k{i}: {i}" for i in range(400))
     + "}\n  b: *a\n  c: *a\n  d: *a\n", r"line 4: aliases are limited: \*a"),
    ("alias inside its own anchor (list)", "exchanges:\n  a: &a [1, *a]\n", r"line 2: alias \*a is inside the value it names"),
    ("alias inside its own anchor (mapping)", "exchanges:\n  a: &a\n    b: *a\n", r"line 3: alias \*a is inside the value it names"),
    ("undefined alias", "exchanges:\n  a: *nowhere\n", r"line 2: not valid YAML: .*undefined alias"),
    ("1000 nested flow lists", _nested_flow(1000), r"line 3: nested more than 32 levels deep"),
    ("1000 nested flow mappings", _nested_flow_maps(1000), r"line 3: nested more than 32 levels deep"),
    ("100 nested block mappings", _nested_block(100), r"line 32: nested more than 32 levels deep"),
    ("60 nested block lists", _nested_block_lists(60), r"nested more than 32 levels deep"),
    ("100,000 nested flow lists", _nested_flow(100_000), r"nested more than 32 levels deep"),
    ("duplicate section", "session:\n  capital: 1\nbroker: {}\nsession:\n  capital: 2\n", r"line 4: duplicate key 'session' \(first on line 1\)"),
    ("duplicate nested key", "exchanges:\n  binance:\n    apiKey: a\n    secret: b\n    apiKey: c\n", r"line 5: duplicate key 'apiKey' \(first on line 3\)"),
    ("duplicate key in a flow mapping", "broker: {fee: 0.001, fee: 0.3}\n", r"line 1: duplicate key 'fee'"),
    ("duplicate key, once quoted", "broker:\n  fee: 0.001\n  'fee': 0.3\n", r"line 3: duplicate key 'fee' \(first on line 2\)"),
    ("duplicate key, once in double quotes", 'broker:\n  "slippage": 0\n  slippage: 0.4\n', r"line 3: duplicate key 'slippage'"),
    ("integer key", "exchanges:\n  binance:\n    1: x\n", r"line 3: key '1' is read as int, not text; write it in quotes"),
    ("float key", "exchanges:\n  binance:\n    1.5: x\n", r"line 3: key '1.5' is read as float"),
    ("bool key yes", "exchanges:\n  binance:\n    yes: x\n", r"line 3: key 'yes' is read as bool"),
    ("bool key on", "exchanges:\n  on: {}\n", r"line 2: key 'on' is read as bool"),
    ("bool key true", "true: 1\n", r"line 1: key 'true' is read as bool"),
    ("null key", "exchanges:\n  ~: {}\n", r"line 2: key '~' is read as null"),
    ("null key written null", "exchanges:\n  binance: {}\n  null: {}\n", r"line 3: key 'null' is read as null"),
    ("explicit empty key", "exchanges:\n  ?\n  : {}\n", r"line 2: key '' is read as null"),
    ("date key", "exchanges:\n  2026-01-05: {}\n", r"line 2: key '2026-01-05' is read as timestamp"),
    ("list as a key", "? [a, b]\n: c\n", r"line 1: a key must be text, not a list or a mapping"),
    ("mapping as a key", "exchanges:\n  ? {a: 1}\n  : c\n", r"line 2: a key must be text"),
    ("python object", "session: !!python/object:os.system {}\n", r"line 1: tag !!python/object:os.system is not allowed"),
    ("python object/apply", "session: !!python/object/apply:os.system [echo pwned]\n", r"tag !!python/object/apply:os.system is not allowed"),
    ("python object/new", "session: !!python/object/new:subprocess.Popen [[id]]\n", r"tag !!python/object/new:subprocess.Popen is not allowed"),
    ("python name", "session: !!python/name:os.system\n", r"tag !!python/name:os.system is not allowed"),
    ("python module", "session: !!python/module:os\n", r"tag !!python/module:os is not allowed"),
    ("python tuple", "gates:\n  enabled: !!python/tuple [halt]\n", r"line 2: tag !!python/tuple is not allowed"),
    ("custom include tag", "exchanges: !include secrets.yaml\n", r"tag !include is not allowed"),
    ("custom env tag", "exchanges:\n  binance:\n    apiKey: !env KEY\n", r"line 3: tag !env is not allowed"),
    ("a tag on a key", "!!python/name:os.system : 1\n", r"tag !!python/name:os.system is not allowed|a key must be text|read as"),
    ("two documents", "session: {}\n---\nbroker: {}\n", r"line 2: not valid YAML: .*single document"),
    ("a list at the top", "- session\n- broker\n", r"must be a mapping of sections .*not list"),
    ("text at the top", "just some words\n", r"must be a mapping of sections .*not str"),
    ("a number at the top", "42\n", r"must be a mapping of sections .*not int"),
    ("a boolean at the top", "true\n", r"must be a mapping of sections .*not bool"),
    ("not UTF-8", b"session:\n  name: caf\xe9\n", r"not UTF-8 text \(byte 20\)"),
    ("broken indentation", "session:\n  name: a\n    mode: paper\n", r"line 3: not valid YAML"),
    ("unclosed flow", "session: {name: a\n", r"not valid YAML"),
    ("tab indentation", "session:\n\tname: a\n", r"line 2: not valid YAML"),
]


@pytest.mark.parametrize(("text", "message"), [case[1:] for case in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_load_config_when_yaml_is_hostile_refuses_naming_file_and_line(tmp_path, text, message):
    # Act
    start = time.perf_counter()
    with pytest.raises(ConfigError) as refused:
        load_config(_home(tmp_path, text), {}, environ={})
    took = time.perf_counter() - start
    # Assert: refused before anything expands, naming the file
    assert str(refused.value).startswith(f"{tmp_path / 'labkit.yaml'}: ")
    assert refused.match(message)
    assert took < 1.0, f"took {took:.2f}s"  # deep flow nesting costs YAML's 1,024-character lookahead


def test_load_config_when_billion_laughs_refuses_in_milliseconds(tmp_path):
    # Regression: yaml.safe_load built the shared nodes, then merging and validating walked 10**9 values.
    home = _home(tmp_path, _laughs(9, 10))
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"labkit.yaml: line \d+: aliases are limited"):
        load_config(home, {}, environ={})
    assert time.perf_counter() - start < 0.1


def test_load_config_when_file_is_over_a_mebibyte_refuses_without_parsing(tmp_path):
    # Arrange: a valid file, all comment, one byte too many
    text = "session: {}\n" + "#" * (MAX_YAML_BYTES - len("session: {}\n") - 1) + "\n"
    assert len(text) == MAX_YAML_BYTES
    load_config(_home(tmp_path, text), {}, environ={})  # exactly 1 MiB is read
    _home(tmp_path, text + "#")
    # Act / Assert
    with pytest.raises(ConfigError, match=r"labkit.yaml: larger than 1,048,576 bytes \(1 MiB\)"):
        load_config(tmp_path, {}, environ={})


def test_load_config_when_file_is_huge_reads_only_the_first_mebibyte(tmp_path):
    # 50 MB of nesting: refused from its size, not parsed
    _home(tmp_path, "a: " + "[" * (50 << 20))
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="larger than"):
        load_config(tmp_path, {}, environ={})
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(
    "text",
    [
        _laughs(9, 10),
        "session:\n  name: a\n  name: b\n",
        "session: !!python/object/apply:os.system [echo pwned]\n",
        _nested_flow(1000),
        "exchanges:\n  binance:\n    1: x\n",
    ],
    ids=["billion laughs", "duplicate key", "python tag", "deep nesting", "integer key"],
)
def test_cli_when_yaml_is_hostile_exits_2_naming_the_file(tmp_path, capsys, text):
    _home(tmp_path, text)
    code = main(["--home", str(tmp_path), "backtest"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(tmp_path / "labkit.yaml") in err and "line " in err


def test_cli_when_billion_laughs_says_aliases_are_limited(tmp_path, capsys):
    _home(tmp_path, _laughs(9, 10))
    start = time.perf_counter()
    assert main(["--home", str(tmp_path), "backtest"]) == 2
    assert time.perf_counter() - start < 1.0
    assert "aliases are limited" in capsys.readouterr().err


def test_load_config_when_anchors_stay_small_reads_them(tmp_path):
    # Anchors that repeat a few values, merge keys overriding what they merge: still plain YAML
    home = _home(
        tmp_path,
        "exchanges:\n"
        "  binance: &common\n    timeout: 3000\n    options: {defaultType: spot}\n"
        "  binanceus:\n    <<: *common\n    timeout: 5000\n"
        "  kraken: *common\n",
    )
    config = load_config(home, {}, environ={})
    assert config.exchanges["binanceus"] == {"timeout": 5000, "options": {"defaultType": "spot"}}
    assert config.exchanges["kraken"] == config.exchanges["binance"]


def test_load_config_when_nesting_is_deep_but_within_the_limit_reads_it(tmp_path):
    # 32 levels from the top: exchanges, binance, options and 29 more
    home = _home(tmp_path, _nested_flow_maps(28))
    config = load_config(home, {}, environ={})
    node = config.exchanges["binance"]["options"]
    for _ in range(28):
        node = node["a"]
    assert node == 1


def test_load_config_when_keys_are_quoted_numbers_or_booleans_reads_them_as_text(tmp_path):
    home = _home(tmp_path, "exchanges:\n  binance:\n    headers: {'1': a, 'yes': b, '2026-01-05': c}\n")
    config = load_config(home, {}, environ={})
    assert config.exchanges["binance"]["headers"] == {"1": "a", "yes": "b", "2026-01-05": "c"}


def test_load_config_when_file_is_empty_or_comments_uses_defaults(tmp_path):
    for text in ("", "# nothing yet\n", "---\n"):
        assert load_config(_home(tmp_path, text), {}, environ={}).session.capital == 10_000.0


# --- Environment values ------------------------------------------------------------------------------


def test_env_when_exchange_key_set_keeps_working_with_ccxt_names():
    environ = {
        "LABKIT_EXCHANGES__BINANCE__APIKEY": "abcdefKEY1234",
        "LABKIT_EXCHANGES__BINANCE__SECRET": "s3cr3tXYZ9876",
        "LABKIT_EXCHANGES__BINANCE__HTTPSPROXY": "http://user:hunter22@proxy:3128",
        "LABKIT_EXCHANGES__BINANCE__PRIVATEKEY": "0xdeadbeef",
        "LABKIT_EXCHANGES__BINANCE__WALLETADDRESS": "0xabc",
        "LABKIT_EXCHANGES__BINANCE__TIMEOUT": "3000",
    }
    config = load_config(None, {}, environ=environ)
    assert config.exchanges["binance"] == {
        "apiKey": "abcdefKEY1234",
        "secret": "s3cr3tXYZ9876",
        "httpsProxy": "http://user:hunter22@proxy:3128",
        "privateKey": "0xdeadbeef",
        "walletAddress": "0xabc",
        "timeout": 3000,
    }


@pytest.mark.parametrize(
    "value",
    ["0123", "1e5", "yes", "no", "null", "~", "true", "abc #frag", "[1, 2]", "{a: 1}", "*alias", "&a [*a]",
     "!!python/object/apply:os.system [id]", "key: value", "- item", "'quoted'", '"double"', "%TAG", "@at", "`tick"],
)
def test_env_when_credential_looks_like_yaml_keeps_it_as_written(value):
    # Regression: env values were read as YAML, so a secret 0123 became 123 and "abc #frag" lost "#frag".
    config = load_config(None, {}, environ={"LABKIT_EXCHANGES__BINANCE__SECRET": value})
    assert config.exchanges["binance"]["secret"] == value


@pytest.mark.parametrize("value", ["&a [*a, *a]", "[" * 5000, "!!python/name:os.system", "{a: 1, a: 2}"])
def test_env_when_value_is_hostile_yaml_keeps_it_as_text(value):
    config = load_config(None, {}, environ={"LABKIT_EXCHANGES__BINANCE__OPTIONS__NOTE": value})
    assert config.exchanges["binance"]["options"]["note"] == value


def test_env_when_value_is_plain_yaml_still_gets_its_type():
    environ = {"LABKIT_BROKER__FEE": "0.002", "LABKIT_GATES__ENABLED": "[halt, data]"}
    config = load_config(None, {}, environ=environ)
    assert config.broker.fee == 0.002 and config.gates.enabled == ("halt", "data")


@pytest.mark.parametrize(
    ("written", "environ", "expected"),
    [
        ("${A}", {"A": "${B}", "B": "boom"}, "${B}"),
        ("${A}", {"A": "${A}"}, "${A}"),
        ("x-${A}-${B}", {"A": "${B}", "B": "two"}, "x-${B}-two"),
        ("${A}${A}", {"A": "$"}, "$$"),
        ("${A}", {"A": "${UNSET}"}, "${UNSET}"),
        ("${A}", {"A": "$${B}}"}, "$${B}}"),
    ],
)
def test_interpolation_when_value_holds_another_reference_expands_once(tmp_path, written, environ, expected):
    home = _home(tmp_path, f"exchanges:\n  binance:\n    options:\n      note: '{written}'\n")
    assert load_config(home, {}, environ=environ).exchanges["binance"]["options"]["note"] == expected


def test_interpolation_when_labkit_variable_refers_to_another_expands_once():
    environ = {"LABKIT_EXCHANGES__BINANCE__APIKEY": "${KEY}", "KEY": "${NOT_AGAIN}"}
    assert load_config(None, {}, environ=environ).exchanges["binance"]["apiKey"] == "${NOT_AGAIN}"
