"""What the serve tests share: a home with a session, a client for it, a journal written by hand."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

with warnings.catch_warnings():
    # starlette 1.x asks for httpx2 and warns once, on import, when it finds httpx; both work.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

from labkit.config.loading import load_config
from labkit.serve import create_app
from tests import stubs

KEY = "k3y-For-Tests-0123456789abcdefXYZ"  # what serve.api_keys holds when a test configures one


@pytest.fixture(scope="module")
def replayed_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with session `s1`: three hours of synthetic 1m bars, replayed once per module."""
    home = tmp_path_factory.mktemp("home")
    return stubs.replayed_session(home, "s1", "2026-01-05", "2026-01-05T03:00")


def make_client(home: Path, environ: dict[str, str] | None = None, **serve: Any) -> TestClient:
    """Return a client of the app over `home`, with `serve.<key>` settings given as keywords."""
    config = load_config(None, {f"serve.{k}": v for k, v in serve.items()}, environ=environ or {})
    return TestClient(create_app(home, config))


@pytest.fixture
def client_for() -> Iterator[Callable[..., TestClient]]:
    opened: list[TestClient] = []

    def make(home: Path, environ: dict[str, str] | None = None, **serve: Any) -> TestClient:
        client = make_client(home, environ, **serve)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def journal_line(seq: int, equity: float = 10_000.0, stage: str = "passed", reason: str | None = None) -> bytes:
    """Return one decision line as the journal holds it (the fields the server reads, and seq's neighbours)."""
    minute = f"{seq // 60 % 24:02d}:{seq % 60:02d}"
    day = 5 + seq // 1440
    line = {
        "schema": 1,
        "session": "big",
        "seq": seq,
        "ts": f"2026-01-{day:02d}T{minute}:00Z",
        "proposed": "BUY" if reason else "HOLD",
        "action": "HOLD",
        "gate_trace": {"stage": stage, "reason": reason, "detail": {}},
        "rejection_reason": None if stage == "passed" else reason,
        "equity": equity,
    }
    return orjson.dumps(line) + b"\n"


def hand_session(home: Path, name: str, lines: list[bytes]) -> Path:
    """Create a session directory holding only a config and the given journal; return its journal."""
    root = home / "data" / "sessions" / name
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text("{}")
    journal = root / "decisions.jsonl"
    journal.write_bytes(b"".join(lines))
    return journal
