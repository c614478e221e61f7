"""A local stand-in for Binance's public REST API on 127.0.0.1, for ccxt's real binance class.

It serves ``/api/v3/exchangeInfo`` and ``/api/v3/klines`` from synthetic bars, and can be told to
misbehave: HTTP 500, 429 with Retry-After, a reply slower than the client's timeout, malformed JSON,
an empty page, bars missing for good, or being down altogether.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from labkit.data.bars import ts_ms
from labkit.data.synthetic import synthetic_bars
from labkit.timeutil import timeframe_ms

MARKET = {
    "symbol": "BTCUSDT",
    "status": "TRADING",
    "baseAsset": "BTC",
    "quoteAsset": "USDT",
    "baseAssetPrecision": 8,
    "quotePrecision": 8,
    "quoteAssetPrecision": 8,
    "baseCommissionPrecision": 8,
    "quoteCommissionPrecision": 8,
    "orderTypes": ["LIMIT", "MARKET"],
    "icebergAllowed": True,
    "ocoAllowed": True,
    "isSpotTradingAllowed": True,
    "isMarginTradingAllowed": False,
    "permissions": ["SPOT"],
    "permissionSets": [["SPOT"]],
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00", "tickSize": "0.01"},
        {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000.0", "stepSize": "0.00001"},
    ],
}


class FakeBinance:
    """Start with `start()`; `url` is the base to give ccxt as ``urls.api.public``."""

    def __init__(self, now_ms: int | None = None, seed: int = 7, page_limit: int = 1000) -> None:
        self.faults: deque[dict[str, Any]] = deque()
        self.missing: list[tuple[int, int]] = []  # [start, end) of opens the exchange never has
        self.down = False
        self.now_ms = now_ms  # None: the wall clock
        self.seed = seed
        self.page_limit = page_limit
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v3"

    def start(self) -> FakeBinance:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def ccxt_config(self, timeout_ms: int = 2000) -> dict[str, Any]:
        return {
            "urls": {"api": {"public": self.url}},
            "options": {"fetchMarkets": {"types": ["spot"]}},
            "timeout": timeout_ms,
        }

    def klines(self, interval: str, start: int, end: int | None, limit: int) -> list[list[Any]]:
        tf = timeframe_ms(interval)
        now = self.now_ms if self.now_ms is not None else int(time.time() * 1000)
        stop = now if end is None else min(end + 1, now)
        stop = min(stop, start + limit * tf)
        bars = synthetic_bars("BTC/USDT", interval, start, stop, self.seed)
        times = ts_ms(bars)
        keep = np.ones(len(times), dtype=bool)
        for lo, hi in self.missing:
            keep &= ~((times >= lo) & (times < hi))
        rows = []
        for t, o, h, low, c, v in zip(
            times[keep].tolist(),
            *(bars[k].to_numpy()[keep].tolist() for k in ("open", "high", "low", "close", "volume")),
            strict=True,
        ):
            rows.append(
                [
                    t,
                    f"{o:.8f}",
                    f"{h:.8f}",
                    f"{low:.8f}",
                    f"{c:.8f}",
                    f"{v:.8f}",
                    t + tf - 1,
                    "0",
                    1,
                    "0",
                    "0",
                    "0",
                ]
            )
        return rows[:limit]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client timed out
                    self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                fake.requests.append({"path": url.path, **query})
                if fake.down:
                    self._send(503, b'{"code":-1,"msg":"Service Unavailable"}')
                    return
                if url.path.endswith("/exchangeInfo"):
                    body = {
                        "timezone": "UTC",
                        "serverTime": int(time.time() * 1000),
                        "rateLimits": [],
                        "exchangeFilters": [],
                        "symbols": [MARKET],
                    }
                    self._send(200, json.dumps(body).encode())
                    return
                if url.path.endswith("/klines"):
                    fault = fake.faults.popleft() if fake.faults else None
                    if fault is not None and self._fault(fault):
                        return
                    rows = fake.klines(
                        query["interval"],
                        int(query.get("startTime", 0)),
                        int(query["endTime"]) if "endTime" in query else None,
                        min(int(query.get("limit", 500)), fake.page_limit),
                    )
                    self._send(200, json.dumps(rows).encode())
                    return
                self._send(404, b'{"code":-1,"msg":"not here"}')

            def _fault(self, fault: dict[str, Any]) -> bool:
                kind = fault["kind"]
                if kind == "500":
                    self._send(500, b'{"code":-1000,"msg":"internal error"}')
                elif kind == "429":
                    self._send(
                        429,
                        b'{"code":-1003,"msg":"Too many requests"}',
                        {"Retry-After": str(fault.get("retry_after", 1))},
                    )
                elif kind == "slow":
                    time.sleep(fault["seconds"])
                    return False
                elif kind == "malformed":
                    self._send(200, b'[[1767571200000, "1.0", "2.0"')
                elif kind == "empty":
                    self._send(200, b"[]")
                else:
                    raise ValueError(kind)
                return True

        return Handler
