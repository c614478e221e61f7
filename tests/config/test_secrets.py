"""Secrets never show: not in config.json, not in session logs, not in ccxt's verbose or debug output."""

from __future__ import annotations

import json
import logging

import pytest
import yaml

from labkit.config.loading import load_config, redacted, secret_values
from labkit.data.ccxt import CcxtSource, SecretRedactor, mask, redact_userinfo
from labkit.data.registry import open_source
from labkit.errors import ConfigError, SourceUnavailableError
from labkit.session.logs import RedactSecrets, config_secrets, session_log
from labkit.session.paths import session_paths
from labkit.session.runner import run_session
from labkit.timeutil import parse_instant
from tests.data.fake_binance import FakeBinance

# Credentials as they are written under exchanges.<id>: ccxt's own fields, then any key that names one.
CREDENTIALS = [
    ("apiKey", "abcdefKEY1234"),
    ("secret", "s3cr3tXYZ9876"),
    ("password", "passPHRASE5678"),
    ("uid", "user-uid-24680"),
    ("login", "loginname1357"),
    ("twofa", "JBSWY3DPEHPK3PXP"),
    ("privateKey", "0x4c0883a69102937d6231471b5dbb6204fe512961708279f22a82e1e0e3e1d0a1"),
    ("walletAddress", "0x71C7656EC7ab88b098defB751B7401B5f6d8976F"),
    ("token", "tok_live_998877"),
    ("secretKey", "secretkey-value-1111"),
    ("api_key", "under_score_key_2222"),
    ("API_KEY", "UPPER_CASE_KEY_3333"),
    ("ApiKEY", "MiXeD-cAsE-kEy-4444"),
    ("accessToken", "access-token-5555"),
    ("refresh_token", "refresh-token-6666"),
    ("passphrase", "kucoin-passphrase-7777"),
    ("PassPhrase", "another-passphrase-8888"),
    ("clientSecret", "client-secret-9999"),
    ("webhookSecret", "whsec_0000aaaa"),
    ("privateKeyPem", "-----BEGIN PRIVATE KEY-----MIIEvQIBADAN-----END PRIVATE KEY-----"),
    ("sessionToken", "session-token-bbbb"),
    ("Passwd", "old-style-passwd-cccc"),
    ("pwd", "short-pwd-dddd"),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-eeee"),
    ("authToken", "auth-token-ffff"),
    ("mnemonic", "abandon ability able about above absent absorb abstract"),
    ("x-api-key", "header-style-key-gggg"),
]


def _home(tmp_path, data: dict) -> object:
    (tmp_path / "labkit.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp_path


def _dumped(config) -> str:
    return json.dumps(redacted(config))


@pytest.mark.parametrize(("key", "value"), CREDENTIALS, ids=[k for k, _ in CREDENTIALS])
def test_redacted_when_credential_configured_shows_at_most_its_last_four(tmp_path, key, value):
    # Arrange
    config = load_config(_home(tmp_path, {"exchanges": {"binance": {key: value, "timeout": 3000}}}), {}, {})
    # Act
    shown = redacted(config)["exchanges"]["binance"]
    # Assert
    assert shown == {key: "****" + value[-4:], "timeout": 3000}
    assert value not in _dumped(config)
    assert value in secret_values(config) and value in config_secrets(config.exchanges)


@pytest.mark.parametrize(("key", "value"), CREDENTIALS, ids=[k for k, _ in CREDENTIALS])
def test_session_log_when_credential_logged_never_shows_it(tmp_path, key, value):
    config = load_config(_home(tmp_path, {"exchanges": {"binance": {key: value}}}), {}, {})
    with session_log(tmp_path, config_secrets(config.exchanges)):
        logging.getLogger("labkit.test").warning("using %s for %s", value, key, extra={"given": value})
    text = (tmp_path / "logs" / "session.jsonl").read_text()
    assert value not in text and "****" + value[-4:] in text


def test_redacted_when_twofa_and_proxy_password_configured_masks_both(tmp_path):
    # Regression: twofa did not end in key/secret/..., and a proxy URL's password sat in a harmless key.
    options = {"twofa": "JBSWY3DPEHPK3PXP", "httpsProxy": "http://user:hunter22@proxy:3128"}
    config = load_config(_home(tmp_path, {"exchanges": {"binance": options}}), {}, {})
    shown = redacted(config)["exchanges"]["binance"]
    assert shown == {"twofa": "****3PXP", "httpsProxy": "http://user:****22@proxy:3128"}
    assert {"JBSWY3DPEHPK3PXP", "hunter22"} <= set(config_secrets(config.exchanges))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "****"),
        ("a", "****"),
        ("abcd", "****"),
        ("abcde", "****e"),
        ("hunter22", "****22"),
        ("abcdefghi", "****ghi"),
        ("abcdefgh1234", "****1234"),
        ("x" * 60 + "WXYZ", "****WXYZ"),
        (12345678, "****78"),
        ("****1234", "****1234"),  # masking twice changes nothing
    ],
)
def test_mask_when_given_values_shows_a_third_at_most_and_never_more_than_four(value, expected):
    assert mask(value) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://user:hunter22@proxy:3128", "http://user:****22@proxy:3128"),
        ("https://user:hunter22@proxy:3128/path?q=1", "https://user:****22@proxy:3128/path?q=1"),
        ("socks5://u:s0cks-passw0rd@127.0.0.1:1080", "socks5://u:****w0rd@127.0.0.1:1080"),
        ("socks5h://u:pw@h:1080", "socks5h://u:****@h:1080"),
        ("HTTP://User:CaseSecret99@Proxy", "HTTP://User:****et99@Proxy"),
        ("http://user:p@ss@word99@proxy:3128", "http://user:****d99@proxy:3128"),
        ("http://user:p%40ss%3Aword@proxy:3128", "http://user:****word@proxy:3128"),
        ("http://user:@proxy:3128", "http://user:****@proxy:3128"),
        ("https://ghp_tokenonly1234@host/api", "https://****1234@host/api"),
        ("wss://key:ws-secret-5678@stream.example/ws", "wss://key:****5678@stream.example/ws"),
        ("http://proxy:3128", "http://proxy:3128"),
        ("mailto:someone@example.com", "mailto:someone@example.com"),
        ("see http://a:bcdefgh12@x and https://c:ijklmn34@y", "see http://a:****h12@x and https://c:****34@y"),
    ],
)
def test_redact_userinfo_when_url_has_a_password_keeps_user_and_masks_it(url, expected):
    assert redact_userinfo(url) == expected


@pytest.mark.parametrize(
    ("options", "path", "secret"),
    [
        ({"httpsProxy": "http://user:hunter22@proxy:3128"}, ["httpsProxy"], "hunter22"),
        ({"httpProxy": "http://u:plainproxy77@proxy"}, ["httpProxy"], "plainproxy77"),
        ({"socksProxy": "socks5://u:socks-secret-1@h:1080"}, ["socksProxy"], "socks-secret-1"),
        ({"proxyUrl": "https://u:cors-proxy-pw9@cors.example/"}, ["proxyUrl"], "cors-proxy-pw9"),
        ({"urls": {"api": {"public": "https://u:in-urls-api-2@h/api"}}}, ["urls", "api", "public"], "in-urls-api-2"),
        ({"urls": {"api": {"public": "https://tokenonly-3333@h/api"}}}, ["urls", "api", "public"], "tokenonly-3333"),
        ({"options": {"mirrors": ["https://a:in-a-list-44@h"]}}, ["options", "mirrors", 0], "in-a-list-44"),
    ],
)
def test_redacted_when_url_anywhere_in_exchange_has_userinfo_masks_it(tmp_path, options, path, secret):
    config = load_config(_home(tmp_path, {"exchanges": {"binance": options}}), {}, {})
    node = redacted(config)["exchanges"]["binance"]
    for part in path:
        node = node[part]
    assert secret not in node and "****" in node
    assert secret not in _dumped(config) and secret in config_secrets(config.exchanges)


def test_redacted_when_url_with_userinfo_is_outside_exchanges_masks_it(tmp_path):
    config = load_config(_home(tmp_path, {"reports": {"kernel": "https://u:kernel-pass-55@hub/k"}}), {}, {})
    assert redacted(config)["reports"]["kernel"] == "https://u:****s-55@hub/k"
    assert "kernel-pass-55" in secret_values(config)


# Values from ${VAR}, under keys that look harmless: (YAML data, environment, key path, the secret)
FROM_ENV = [
    ({"exchanges": {"binance": {"headers": {"X-Api": "${MY_TOKEN}"}}}}, {"MY_TOKEN": "hdr-token-4321"},
     ["exchanges", "binance", "headers", "X-Api"], "hdr-token-4321"),
    ({"exchanges": {"binance": {"options": {"brokerId": "${BROKER}"}}}}, {"BROKER": "broker-id-8765"},
     ["exchanges", "binance", "options", "brokerId"], "broker-id-8765"),
    ({"exchanges": {"binance": {"hostname": "${HOST}"}}}, {"HOST": "private.host.example"},
     ["exchanges", "binance", "hostname"], "private.host.example"),
    ({"exchanges": {"binance": {"options": {"note": "prefix-${PART}-suffix"}}}}, {"PART": "inner-part-1357"},
     ["exchanges", "binance", "options", "note"], "inner-part-1357"),
    ({"exchanges": {"binance": {"options": {"list": ["a", "${IN_LIST}"]}}}}, {"IN_LIST": "listed-2468"},
     ["exchanges", "binance", "options", "list", 1], "listed-2468"),
    ({"exchanges": {"binance": {"timeout": "${TIMEOUT}"}}}, {"TIMEOUT": "30000"},
     ["exchanges", "binance", "timeout"], "30000"),
]


@pytest.mark.parametrize(("data", "environ", "path", "secret"), FROM_ENV, ids=[e[-1] for e in FROM_ENV])
def test_redacted_when_value_came_from_a_variable_masks_it_whatever_the_key(tmp_path, data, environ, path, secret):
    # Arrange
    config = load_config(_home(tmp_path, data), {}, environ)
    # Act
    node = redacted(config)
    for part in path:
        node = node[part]
    # Assert
    assert node.startswith("****") and secret not in node
    assert secret not in _dumped(config)
    assert secret in secret_values(config)
    assert secret in config_secrets(config.exchanges)  # the runner's call, unchanged


def test_config_secrets_when_given_config_or_its_exchanges_agree(tmp_path):
    data = {"exchanges": {"binance": {"apiKey": "${KEY}", "headers": {"X-Api": "${TOK}"}}}, "reports": {"kernel": "${K}"}}
    config = load_config(_home(tmp_path, data), {}, {"KEY": "key-from-env-1", "TOK": "tok-from-env-2", "K": "k-env-3"})
    assert config_secrets(config) == config_secrets(config.exchanges) == secret_values(config)
    assert {"key-from-env-1", "tok-from-env-2"} <= set(config_secrets(config))
    assert "k-env-3" not in config_secrets(config)  # a kernel name from the environment is no secret


def test_config_secrets_when_given_plain_exchanges_finds_credentials_and_passwords():
    exchanges = {"binance": {"apiKey": "plain-key-1234", "httpsProxy": "http://u:plain-pw-77@p", "timeout": 3000}}
    assert config_secrets(exchanges) == ["plain-key-1234", "plain-pw-77"]


def test_redacted_when_config_is_copied_still_masks_variable_values(tmp_path):
    config = load_config(_home(tmp_path, {"exchanges": {"binance": {"headers": {"X-Api": "${T}"}}}}), {}, {"T": "copied-9876"})
    copy = config.model_copy(update={"session": config.session.model_copy(update={"max_bars": 10})})
    assert redacted(copy)["exchanges"]["binance"]["headers"]["X-Api"] == "****876"
    assert "copied-9876" in config_secrets(copy.exchanges)


def test_redacted_when_variables_are_not_used_masks_nothing_else(tmp_path):
    # A config loaded with a variable must not mark values of other configs.
    load_config(_home(tmp_path, {"reports": {"kernel": "${K}"}}), {}, {"K": "python3"})
    other = load_config(None, {}, {})
    assert redacted(other)["reports"]["kernel"] == "python3"


@pytest.mark.parametrize(
    ("data", "environ", "secret"),
    [
        ({"exchanges": {"binance": "${KEY}"}}, {"KEY": "not-a-mapping-5678"}, "not-a-mapping-5678"),
        ({"session": {"capital": "http://u:in-error-99@h"}}, {}, "in-error-99"),
    ],
)
def test_load_config_when_secret_is_invalid_names_key_without_showing_it(tmp_path, data, environ, secret):
    with pytest.raises(ConfigError) as refused:
        load_config(_home(tmp_path, data), {}, environ)
    assert secret not in str(refused.value) and "****" in str(refused.value)


# --- Session logs ----------------------------------------------------------------------------------

# Text as libraries and people write secrets in log lines, with no known value to look for.
INLINE = [
    "apiKey=inline-key-0001",
    "api_key: inline-key-0002",
    "API-KEY = inline-key-0003",
    '{"secret": "inline-secret-0004"}',
    "{'X-MBX-APIKEY': 'inline-hdr-0005'}",
    "Authorization: Bearer inline-bearer-0006",
    "authorization=Basic inline-basic-0007",
    "GET /api/v3/account?timestamp=1&signature=inline-sig-0008&recvWindow=5000",
    "password=inline-password-0009",
    "token=inline-token-0010",
    "passphrase: inline-phrase-0011",
    "secretKey=inline-secretkey-0012",
    "access_token=inline-access-0013",
    "Cookie: inline-cookie-0014",
    "private_key=inline-private-0015",
    "proxy http://user:inline-proxy-0016@proxy:3128 refused",
]


@pytest.mark.parametrize("line", INLINE)
def test_redact_secrets_when_secret_is_written_inline_masks_it(line):
    secret = next(word for word in line.replace("'", " ").replace('"', " ").replace("&", " ").replace("=", " ")
                  .replace("@", " ").replace(":", " ").split() if word.startswith("inline-"))
    assert secret not in RedactSecrets().redact(line)


def test_redact_secrets_when_secret_appears_encoded_masks_every_form():
    secret = "p@ss/word+with spaces&more"
    redact = RedactSecrets([secret])
    text = redact.redact(f'raw {secret} url ?pw=p%40ss%2Fword%2Bwith%20spaces%26more json "p@ss/word+with spaces&more"')
    assert "ss/word" not in text and "p%40ss" not in text and "spaces" not in text


def test_session_log_when_extras_and_tracebacks_hold_secrets_masks_them(tmp_path):
    secret = "deep-secret-value-4242"
    with session_log(tmp_path, [secret]):
        log = logging.getLogger("labkit.test")
        log.warning("extras", extra={"payload": {"nested": [secret, {"k": f"x {secret}"}]}, "pair": (secret, 1)})
        try:
            raise RuntimeError(f"failed with {secret}")
        except RuntimeError:
            log.exception("it failed")
    text = (tmp_path / "logs" / "session.jsonl").read_text()
    assert secret not in text and text.count("****4242") >= 4


def _log_inside_the_session(monkeypatch, text: str) -> None:
    # The runner opens the session log with the secrets it gathered; log `text` inside it.
    from contextlib import contextmanager

    from labkit.session import runner

    real = runner.session_log

    @contextmanager
    def session_log_then_log(directory, secrets=(), *args, **kwargs):
        with real(directory, secrets, *args, **kwargs) as handler:
            logging.getLogger("labkit.test").warning("connecting with %s", text)
            yield handler

    monkeypatch.setattr(runner, "session_log", session_log_then_log)


def test_session_when_run_never_writes_a_secret_to_its_files(tmp_path, monkeypatch):
    # Arrange: credentials, a proxy password and variables under harmless keys, all logged in the run
    secrets = {"KEY": "run-key-value-1234", "TOK": "run-header-token-5678", "NOTE": "run-note-value-9012"}
    data = {
        "exchanges": {
            "binance": {
                "apiKey": "${KEY}",
                "secret": "run-secret-in-file-3456",
                "twofa": "RUNTWOFASEED7890",
                "httpsProxy": "http://user:run-proxy-pw-2468@proxy:3128",
                "headers": {"X-Api": "${TOK}", "Authorization": "Bearer run-bearer-token-1357"},
                "options": {"note": "${NOTE}"},
            }
        }
    }
    every = [*secrets.values(), "run-secret-in-file-3456", "RUNTWOFASEED7890", "run-proxy-pw-2468",
             "run-bearer-token-1357"]
    _log_inside_the_session(monkeypatch, " ".join(every))
    settings = {"session.name": "sec", "session.pace": "fast", "session.since": "2026-01-05",
                "session.until": "2026-01-05T00:30"}
    config = load_config(_home(tmp_path, data), settings, secrets)
    # Act
    run_session(config, tmp_path, progress=False)
    # Assert
    root = session_paths(tmp_path, "sec").root
    written = "".join(p.read_text(errors="ignore") for p in root.rglob("*") if p.is_file())
    assert "connecting with" in written and "****1234" in written
    for secret in every:
        assert secret not in written, secret


# --- ccxt: verbose dumps and the debug log, against the local exchange -------------------------------

T0 = parse_instant("2026-01-05")
MIN = 60_000
CCXT_ENV = {"BINANCE_KEY": "ccxtKEYabcdef1234", "BINANCE_SECRET": "ccxtSECRETzyx9876", "MY_TOKEN": "ccxt-hdr-tok-4321"}
CCXT_SECRETS = [*CCXT_ENV.values(), "ccxt-pass-phrase-55", "ccxt-url-pw-6789", "ccxt-bearer-7777", "CCXTTWOFA2345"]


@pytest.fixture
def exchange():
    fake = FakeBinance(now_ms=T0 + 20_000 * MIN).start()
    yield fake
    fake.close()


def _verbose_home(tmp_path, fake) -> object:
    public = fake.url.replace("http://", "http://labkit:ccxt-url-pw-6789@")
    options = {
        **fake.ccxt_config(timeout_ms=500),
        "urls": {"api": {"public": public}},
        "apiKey": "${BINANCE_KEY}",
        "secret": "${BINANCE_SECRET}",
        "password": "ccxt-pass-phrase-55",
        "twofa": "CCXTTWOFA2345",
        "verbose": True,
        "headers": {"X-Api": "${MY_TOKEN}", "X-MBX-APIKEY": "${BINANCE_KEY}", "Authorization": "Bearer ccxt-bearer-7777"},
    }
    return _home(tmp_path, {"exchanges": {"binance": options}, "data": {"backoff_base": 0.01, "backoff_cap": 0.02}})


def test_ccxt_when_verbose_with_keys_prints_and_logs_no_secret(tmp_path, exchange, capfd, caplog):
    # Arrange: ccxt verbose, its debug log on, keys and secret headers set
    caplog.set_level(logging.DEBUG, logger="ccxt")
    config = load_config(_verbose_home(tmp_path, exchange), {}, CCXT_ENV)
    source = open_source("ccxt:binance", tmp_path, data=config.data, exchanges=config.exchanges)
    assert isinstance(source, CcxtSource)
    source.progress = False
    # Act
    stats = source.fetch("BTC/USDT", "1m", T0, T0 + 30 * MIN)
    # Assert: the dumps were there, with the headers and the URL, masked
    out, err = capfd.readouterr()
    shown = out + err + caplog.text
    assert stats["fetched"] == 30
    assert "fetch Request:" in out and "fetch Response:" in out and "X-Api" in out
    assert "Request:" in caplog.text and "http://labkit:****6789@127.0.0.1" in caplog.text
    for secret in CCXT_SECRETS:
        assert secret not in shown, secret


def test_ccxt_when_exchange_fails_says_why_without_the_url_password(tmp_path, exchange, capfd):
    exchange.down = True
    config = load_config(_verbose_home(tmp_path, exchange), {"data.retries": 1}, CCXT_ENV)
    source = open_source("ccxt:binance", tmp_path, data=config.data, exchanges=config.exchanges)
    with pytest.raises(SourceUnavailableError) as failed:
        source.fetch("BTC/USDT", "1m", T0, T0 + 30 * MIN)  # type: ignore[attr-defined]
    out, err = capfd.readouterr()
    for secret in CCXT_SECRETS:
        assert secret not in str(failed.value) + out + err, secret


def test_session_when_ccxt_is_verbose_keeps_secrets_out_of_output_and_files(tmp_path, exchange, capfd, monkeypatch):
    # Arrange
    settings = {"session.name": "verbose", "session.source": "ccxt:binance", "session.pace": "fast",
                "session.since": "2026-01-05", "session.until": "2026-01-05T01:00"}
    config = load_config(_verbose_home(tmp_path, exchange), settings, CCXT_ENV)
    _log_inside_the_session(monkeypatch, " ".join(CCXT_SECRETS))
    # Act
    run_session(config, tmp_path, progress=False)
    # Assert
    out, err = capfd.readouterr()
    root = session_paths(tmp_path, "verbose").root
    files = "".join(p.read_text(errors="ignore") for p in root.rglob("*") if p.suffix in (".json", ".jsonl"))
    assert "fetch Request:" in out and "connecting with" in files
    assert '"X-Api": "****4321"' in (root / "config.json").read_text()
    for secret in CCXT_SECRETS:
        assert secret not in out + err + files, secret


def test_secret_redactor_when_given_short_values_leaves_text_alone():
    # Values under four characters would cut every word they appear in; key and URL rules still apply.
    redact = SecretRedactor(["ab", "xyz"])
    assert redact("abcxyz and secret=xyz") == "abcxyz and secret=****"


def test_resume_when_symbol_came_from_a_variable_reads_it_back_unmasked(tmp_path):
    # A symbol from ${VAR} is not a secret: the session must resume on the market it started on.
    from labkit.config.loading import load_config, redacted
    from labkit.session.runner import run_session
    from labkit.session.state import resume_overrides

    (tmp_path / "labkit.yaml").write_text("session:\n  symbol: ${PAIR}\n")
    environ = {"PAIR": "ETH/USDT"}
    overrides = {"session.name": "v", "session.pace": "fast", "session.since": "2026-01-05",
                 "session.until": "2026-01-05T01:00"}
    config = load_config(tmp_path, overrides, environ=environ)
    assert redacted(config)["session"]["symbol"] == "ETH/USDT"
    run_session(config, tmp_path, progress=False)
    assert resume_overrides(tmp_path, "v", {})["session.symbol"] == "ETH/USDT"


@pytest.mark.parametrize(
    ("data", "environ", "path", "value"),
    [
        ({"reports": {"kernel": "${KERNEL}"}}, {"KERNEL": "kernel-from-env"}, ["reports", "kernel"], "kernel-from-env"),
        ({"session": {"symbol": "${PAIR}"}}, {"PAIR": "ETH/USDT"}, ["session", "symbol"], "ETH/USDT"),
        ({"session": {"source": "csv:${DIR}/bars.csv"}}, {"DIR": "/data"}, ["session", "source"], "csv:/data/bars.csv"),
    ],
)
def test_redacted_when_a_variable_fills_a_setting_outside_credentials_keeps_it(tmp_path, data, environ, path, value):
    # Only exchanges and serve hold credentials: elsewhere a ${VAR} is configuration a resume reads back.
    config = load_config(_home(tmp_path, data), {}, environ)
    node = redacted(config)
    for part in path:
        node = node[part]
    assert node == value


# --- Secrets in URL query strings ------------------------------------------------------------------

# A URL whose query carries a secret, as an exchange's endpoint may: (URL, the secret, what stays)
QUERY_URLS = [
    ("https://api.example/v1?token=tok-in-query-1234", "tok-in-query-1234", "https://api.example/v1?token=****"),
    ("https://api.example/v1?region=eu&apiKey=key-in-query-5678&x=1", "key-in-query-5678", "region=eu&apiKey=****"),
    ("wss://stream.example/ws?access_token=acc-in-query-9012#frag", "acc-in-query-9012", "#frag"),
    ("https://h.example/p?sig=signed-in-query-3456", "signed-in-query-3456", "?sig=****"),
    ("https://h.example/p?auth=auth%2Fin%2Bquery-7890", "auth%2Fin%2Bquery-7890", "?auth=****"),
]


@pytest.mark.parametrize(("url", "secret", "kept"), QUERY_URLS, ids=[u[1] for u in QUERY_URLS])
def test_redacted_when_exchange_url_has_a_secret_query_parameter_masks_it(tmp_path, url, secret, kept):
    # Regression: a literal ?token= in exchanges.*.urls was written in clear to config.json.
    config = load_config(_home(tmp_path, {"exchanges": {"binance": {"urls": {"api": {"public": url}}}}}), {}, {})
    shown = redacted(config)["exchanges"]["binance"]["urls"]["api"]["public"]
    assert secret not in shown and secret not in _dumped(config)
    assert kept in shown and shown.startswith(url.split("?")[0])
    assert secret in secret_values(config) and secret in config_secrets(config.exchanges)


def test_redacted_when_url_query_holds_no_secret_keeps_it_whole(tmp_path):
    url = "https://api.example/v1?region=eu&limit=1000&symbol=BTCUSDT"
    config = load_config(_home(tmp_path, {"exchanges": {"binance": {"urls": {"api": {"public": url}}}}}), {}, {})
    assert redacted(config)["exchanges"]["binance"]["urls"]["api"]["public"] == url


def test_session_config_json_when_exchange_url_holds_a_token_never_shows_it(tmp_path):
    # What a session writes to disk: its config.json, from the config it was started with.
    from labkit.session.runner import run_session

    token = "tok-written-to-disk-2468"
    data = {"exchanges": {"binance": {"urls": {"api": {"public": f"https://api.example/v1?token={token}"}}}}}
    overrides = {"session.name": "q", "session.pace": "fast", "session.since": "2026-01-05",
                 "session.until": "2026-01-05T00:30"}
    run_session(load_config(_home(tmp_path, data), overrides, {}), tmp_path, progress=False)
    written = session_paths(tmp_path, "q").config.read_text()
    assert token not in written and "?token=****" in written
