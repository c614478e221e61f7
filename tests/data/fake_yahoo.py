"""An injected `requests.Session` whose transport answers Yahoo's chart API locally (no network)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import requests
from requests.adapters import BaseAdapter

from labkit.data.bars import ts_ms
from labkit.data.synthetic import synthetic_bars

_INTERVAL_TF = {"1d": "1d", "1h": "1h", "60m": "1h", "5m": "5m", "15m": "15m", "1m": "1m", "1wk": "1w"}


class FakeYahooAdapter(BaseAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[str] = []
        self.fail_next = 0  # drop this many chart requests first, as a network failure

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = urlparse(request.url or "")
        self.requests.append(url.path)
        if "getcrumb" in url.path:
            return _response(request, 200, b"fakecrumb", "text/plain")
        if "/v8/finance/chart/" not in url.path:
            return _response(request, 404, b"not here", "text/plain")
        if self.fail_next:
            self.fail_next -= 1
            raise requests.ConnectionError("connection reset by the fake Yahoo")
        symbol = url.path.rsplit("/", 1)[-1]
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        interval = query.get("interval", "1d")
        if "period1" in query:
            start, end = int(query["period1"]) * 1000, int(query["period2"]) * 1000
        else:
            end = 1_767_571_200_000
            start = end - 86_400_000
        bars = synthetic_bars(symbol, _INTERVAL_TF[interval], start, end, seed=11)
        times = (ts_ms(bars) // 1000).tolist()
        quote = {k: np.round(bars[k].to_numpy(), 4).tolist() for k in ("open", "high", "low", "close")}
        quote["volume"] = bars["volume"].round().astype("int64").tolist()
        meta = {
            "currency": "USD",
            "symbol": symbol,
            "exchangeName": "PCX",
            "fullExchangeName": "NYSEArca",
            "instrumentType": "ETF",
            "firstTradeDate": 728317800,
            "regularMarketTime": times[-1] if times else 0,
            "hasPrePostMarketData": True,
            "gmtoffset": 0,
            "timezone": "UTC",
            "exchangeTimezoneName": "UTC",
            "regularMarketPrice": quote["close"][-1] if times else 0.0,
            "chartPreviousClose": 1.0,
            "priceHint": 2,
            "dataGranularity": interval,
            "range": "",
            "validRanges": ["1d", "5d", "1mo", "1y", "max"],
        }
        body = {
            "chart": {
                "result": [
                    {
                        "meta": meta,
                        "timestamp": times,
                        "indicators": {"quote": [quote], "adjclose": [{"adjclose": quote["close"]}]},
                    }
                ],
                "error": None,
            }
        }
        return _response(request, 200, json.dumps(body).encode())

    def close(self) -> None:
        pass


def _response(
    request: requests.PreparedRequest, status: int, body: bytes, content_type: str = "application/json"
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers["Content-Type"] = content_type
    response.url = request.url or ""
    response.request = request
    response.encoding = "utf-8"
    return response


def fake_session() -> tuple[requests.Session, FakeYahooAdapter]:
    session = requests.Session()
    adapter = FakeYahooAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session, adapter
