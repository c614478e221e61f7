"""The HTTP service over a labkit home: `create_app(home, config)` is what `labkit serve` runs.

It only reads session files (through `labkit.session.status` and the journal readers) and sends
commands through the session's control log, as the command line does (`command_session`): a crash
of the server never touches a session. docs/serve.md describes every route.

Hostile requests are answered before they reach a file: a path over `MAX_PATH` bytes or with a
control character, a name that is not a session name, a parameter out of range, a body that is not
a small JSON object all get a 4xx whose JSON names the field. Files are served only from the
package's ``static/`` folder and the home's ``reports/`` folder, and never from outside them.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from labkit.config.schema import LabkitConfig
from labkit.errors import ConfigError
from labkit.home import NAME_RULE, is_name
from labkit.serve.guard import KeyRing, RateLimiter, api_keys, client_name, harmless, is_loopback
from labkit.serve.journals import JournalViews
from labkit.serve.statuses import StatusCache
from labkit.session.paths import SessionPaths, session_paths

log = logging.getLogger("labkit.serve")
STATIC = Path(__file__).resolve().parent / "static"
MAX_PATH = 2048  # bytes of the request's path, as sent
MAX_QUERY = 2048
MAX_BODY = 4096
MAX_POINTS = 10_000
DEFAULT_POINTS = 500
DEFAULT_LIMIT = 100
MAX_LOG_LINES = 500
DEFAULT_LOG_LINES = 100
LOG_TAIL_BYTES = 1 << 20  # a log tail reads at most this much of the file's end
# The URL's word for each command of `labkit.session.control`.
COMMANDS = {
    "stop": "stop",
    "emergency-stop": "emergency_stop",
    "resume": "resume",
    "reduce-only": "reduce_only",
}
READS = ("decisions", "equity", "log")
# What a person types instead when control over HTTP is off (no serve.api_keys).
CLI_COMMANDS = {action: f"labkit {action} --session NAME" for action in COMMANDS}
_GET = {"Allow": "GET, HEAD"}
_POST = {"Allow": "POST"}
_ANY = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_INTEGER = re.compile(r"-?[0-9]{1,18}")

PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
# Reports are static pages with inline styles and embedded images, and no script at all.
REPORT_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; font-src 'self' data:; "
    "base-uri 'none'; frame-ancestors 'self'; form-action 'none'"
)
_PLACEHOLDER = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>labkit serve</title></head>
<body><h1>labkit serve</h1><p>The page's assets are missing (labkit/serve/static/index.html is not
installed). The API answers: <a href="/api/sessions">/api/sessions</a>, <a href="/health">/health</a>,
<a href="/metrics">/metrics</a>, <a href="/api/reports">/api/reports</a>.</p></body></html>
"""


class ApiError(Exception):
    """A request refused: its status, what is wrong, and the field (parameter, header, body key) at fault."""

    def __init__(
        self, status: int, message: str, field: str | None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.headers = status, message, field, dict(headers or {})


class Json(Response):
    """A JSON response encoded by orjson (a NaN becomes null; nothing raises on a float)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def error_response(
    status: int, message: str, field: str | None, headers: Mapping[str, str] | None = None
) -> Json:
    """Return the JSON every refusal has: what is wrong (`error`) and the field at fault (`field`)."""
    return Json({"error": message, "field": field}, status_code=status, headers=dict(headers or {}))


def shown(text: str, limit: int = 40) -> str:
    """Return a client's text as an error may quote it: repr'd, and cut when long."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def create_app(
    home: Path,
    config: LabkitConfig,
    loopback_only: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> Starlette:
    """Return the application serving `home` with the ``serve`` section of `config`.

    `loopback_only` (what `labkit serve` sets when it listens on loopback) refuses a request whose
    ``Host`` header names another host: a page elsewhere whose name was made to resolve to
    127.0.0.1 (DNS rebinding) cannot read the API from a visitor's browser. `clock` (monotonic
    seconds) dates the statuses kept between requests (`labkit.serve.statuses`).

    Raises
    ------
    ConfigError
        When a key of ``serve.api_keys`` is unfit (`labkit.serve.guard.api_keys`).
    """
    home = Path(home)
    service = _Service(home, config, StatusCache(home, clock=clock))
    routes = [
        Route("/", service.index, methods=["GET"]),
        Route("/health", service.health, methods=["GET"]),
        Route("/metrics", service.metrics, methods=["GET"]),
        Route("/api/sessions", service.sessions, methods=["GET"]),
        Route("/api/sessions/{name}", service.session, methods=["GET"]),
        Route("/api/sessions/{name}/decisions", service.decisions, methods=["GET"]),
        Route("/api/sessions/{name}/equity", service.equity, methods=["GET"]),
        Route("/api/sessions/{name}/log", service.log_tail, methods=["GET"]),
        Route("/api/sessions/{name}/{action}", service.control, methods=["POST"]),
        Route("/api/sessions/{rest:path}", service.unrouted, methods=_ANY),  # say what is wrong
        Route("/api/reports", service.reports, methods=["GET"]),
        Route("/api/server", service.server, methods=["GET"]),
        Mount("/static", _Files(directory=STATIC, check_dir=False), name="static"),
        Mount("/reports", _Files(directory=home / "reports", check_dir=False, html=True), name="reports"),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(
                _Guard,
                limiter=RateLimiter(config.serve.rate_limit_per_minute),
                loopback_only=loopback_only,
                forwarded_header=config.serve.forwarded_header,
            )
        ],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _server_error},
    )


class _Files(StaticFiles):
    # A folder missing at start (no report rendered yet) is a 404 until it appears, not an error.
    async def check_config(self) -> None:
        return None


class _Service:
    def __init__(self, home: Path, config: LabkitConfig, statuses: StatusCache) -> None:
        self.home = home
        self.statuses = statuses
        self.serve = config.serve
        self.api_keys = api_keys(config.serve)
        self.keys = KeyRing(self.api_keys)
        self.views = JournalViews()
        self.redact = _log_redactor(config, self.api_keys)

    # --- pages -------------------------------------------------------------------------------------

    def index(self, request: Request) -> Response:
        page = STATIC / "index.html"
        if page.is_file():
            return FileResponse(page, media_type="text/html")
        return HTMLResponse(_PLACEHOLDER)

    # --- health and metrics ------------------------------------------------------------------------

    # /health and the statuses run on the event loop, not in a worker thread: their statuses are
    # kept between requests (`StatusCache`), so most answers cost a few stat calls, and fifty
    # clients at once do not queue for threads that contend for the GIL.

    async def health(self, request: Request) -> Json:
        from labkit.timeutil import iso_ms, now_ms

        self._no_parameters(request)
        limit = self.serve.stale_after_seconds
        running, stale = [], []
        for status in self._statuses():
            age = beat_age(status)
            why = unhealthy(status, age, limit)
            if why is not None:
                stale.append(_named(status, age, why))
            elif status["status_word"] in LIVE_WORDS:
                running.append(status["session"])
        body = {
            "status": "ok" if not stale else "stale",
            "running": running,
            "stale": stale,
            "stale_after_seconds": limit,
            "checked_at": iso_ms(now_ms()),
        }
        return Json(body, status_code=200 if not stale else 503)

    def metrics(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        from labkit.serve.metrics import exposition, families

        self._no_parameters(request)
        rows, journals = [], set()
        for status in self._statuses():
            journal = session_paths(self.home, status["session"]).decisions
            journals.add(journal)
            age = beat_age(status)
            stale = unhealthy(status, age, self.serve.stale_after_seconds) is not None
            rows.append((status, self.views.get(journal).counts(), age, stale))
        self.views.keep_only(journals)
        return Response(exposition(families(rows)), media_type=CONTENT_TYPE_LATEST)

    # --- sessions ----------------------------------------------------------------------------------

    async def sessions(self, request: Request) -> Json:
        self._no_parameters(request)
        return Json(self._statuses())

    async def session(self, request: Request) -> Json:
        self._no_parameters(request)
        paths = self._paths(request.path_params["name"])
        status = self.statuses.status(paths.name)
        if status is None:
            raise _no_session(paths.name)
        return Json(status)

    def decisions(self, request: Request) -> Json:
        most = self.serve.decisions_limit_max
        params = _parameters(
            request,
            {"after_seq": (-1, 10**15, -1), "limit": (1, most, min(DEFAULT_LIMIT, most))},
            self.api_keys,
        )
        paths = self._paths(request.path_params["name"])
        after, limit = params["after_seq"], params["limit"]
        lines, total = self.views.get(paths.decisions).decisions_after(after, limit)
        return Json(
            {
                "session": paths.name,
                "after_seq": after,
                "limit": limit,
                "total": total,
                "next_after_seq": lines[-1].get("seq", after) if lines else after,
                "decisions": lines,
            }
        )

    def equity(self, request: Request) -> Json:
        params = _parameters(request, {"points": (1, MAX_POINTS, DEFAULT_POINTS)}, self.api_keys)
        paths = self._paths(request.path_params["name"])
        curve = self.views.get(paths.decisions).equity_curve(params["points"])
        return Json({"session": paths.name, **curve})

    def log_tail(self, request: Request) -> Json:
        params = _parameters(request, {"lines": (1, MAX_LOG_LINES, DEFAULT_LOG_LINES)}, self.api_keys)
        paths = self._paths(request.path_params["name"])
        lines = [self.redact(entry) for entry in log_tail(paths.logs / "session.jsonl", params["lines"])]
        return Json({"session": paths.name, "lines": lines})

    async def server(self, request: Request) -> Json:
        self._no_parameters(request)
        return Json({"control": bool(self.keys), "commands": CLI_COMMANDS})

    def reports(self, request: Request) -> Json:
        from labkit.reports.index import index_entries

        self._no_parameters(request)
        listed = []
        for entry in index_entries(self.home):
            parts = entry.link.split("/")
            if any(part in ("", ".", "..") for part in parts):
                continue  # a sidecar naming a page outside its folder: not a link to give out
            data = entry.sidecar
            listed.append(
                {
                    "kind": data.get("kind"),
                    "session": data.get("session"),
                    "period": data.get("period"),
                    "period_shown": data.get("period_shown") or data.get("period"),
                    "outcome": entry.outcome,
                    "ok": bool(data.get("ok")),
                    "error": data.get("error"),
                    "generated_at": data.get("generated_at"),
                    "url": "/reports/" + quote(entry.link),
                }
            )
        index = (self.home / "reports" / "index.html").is_file()
        return Json({"index": "/reports/index.html" if index else None, "reports": listed})

    # --- control -----------------------------------------------------------------------------------

    async def control(self, request: Request) -> Json:
        action = request.path_params["action"]
        if action not in COMMANDS:
            if action in READS:
                raise ApiError(405, f"method: {action} is read with GET", "method", _GET)
            raise ApiError(404, f"action: not a command; allowed: {', '.join(COMMANDS)} (POST)", "action")
        client = request.client.host if request.client else "unknown"
        if not self.keys:
            raise ApiError(
                403,
                "serve.api_keys: control over HTTP is off on this server: no key is configured",
                "serve.api_keys",
            )
        if not self.keys.matches(request.headers.get("authorization")):
            log.warning("refused POST %s from %s: missing or wrong key", action, client)
            raise ApiError(
                401,
                "Authorization: send `Authorization: Bearer KEY`, KEY one of serve.api_keys",
                "Authorization",
                {"WWW-Authenticate": 'Bearer realm="labkit"'},
            )
        self._no_parameters(request)
        paths = self._paths(request.path_params["name"])
        args = await _body(request, action)
        outcome, result = await run_in_threadpool(_command, paths, action, args)
        log.info("session %s: %s from %s: %s", paths.name, action, client, result)
        body = {"session": paths.name, "command": action, "outcome": outcome, "result": result, **args}
        return Json(body, status_code=202 if outcome == "queued" else 200)

    def unrouted(self, request: Request) -> Json:
        name, _, tail = request.path_params["rest"].partition("/")
        self._paths(name, must_exist=False)
        if tail in ("", *READS):
            raise ApiError(405, f"method: {request.method} is not allowed here; use GET", "method", _GET)
        if tail in COMMANDS:
            raise ApiError(405, f"method: {request.method} is not allowed here; use POST", "method", _POST)
        raise ApiError(404, f"path: no such route under /api/sessions/{name}/", "path")

    # --- helpers -----------------------------------------------------------------------------------

    def _no_parameters(self, request: Request) -> None:
        _parameters(request, {}, self.api_keys)

    def _paths(self, name: str, must_exist: bool = True) -> SessionPaths:
        if not is_name(name):
            raise ApiError(400, f"name: not a session name; {NAME_RULE}", "name")
        paths = session_paths(self.home, name)
        if must_exist and not paths.exists():
            raise _no_session(name)
        return paths

    def _statuses(self) -> list[dict[str, Any]]:
        return self.statuses.statuses()


def _no_session(name: str) -> ApiError:
    return ApiError(404, f"name: no session {name!r} under this home; GET /api/sessions lists them", "name")


def log_tail(path: Path, count: int) -> list[dict[str, Any]]:
    """Return the last `count` complete lines of a session log, each a JSON object, oldest first.

    Only the file's last `LOG_TAIL_BYTES` are read; a line that is not a JSON object is returned
    as ``{"message": its text}``, and a line still being written waits for the next read.
    """
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            data = handle.read()
    except FileNotFoundError:
        return []
    whole = data.split(b"\n")[1 if size > LOG_TAIL_BYTES else 0 : -1]
    entries = []
    for raw in [line for line in whole if line.strip()][-count:]:
        try:
            entry = orjson.loads(raw)
        except orjson.JSONDecodeError:
            entry = None
        if not isinstance(entry, dict):
            entry = {"message": raw.decode("utf-8", "replace")}
        entries.append(entry)
    return entries


def _log_redactor(config: LabkitConfig, keys: list[str]) -> Callable[[Any], Any]:
    # The session masked its own secrets as it wrote; the server masks its own on the way out too.
    from labkit.session.logs import RedactSecrets, config_secrets

    masker = RedactSecrets(config_secrets(config), whole=keys)

    def redact(value: Any) -> Any:
        if isinstance(value, str):
            return masker.redact(value)
        if isinstance(value, dict):
            return {key: redact(item) for key, item in value.items()}
        if isinstance(value, list):
            return [redact(item) for item in value]
        return value

    return redact


def beat_age(status: dict[str, Any]) -> float | None:
    """Return the seconds since a status's last heartbeat, or None when it has none."""
    from labkit.timeutil import now_ms, parse_instant

    try:
        return round(max(0.0, (now_ms() - parse_instant(status["last_beat"])) / 1000.0), 3)
    except (KeyError, TypeError, ConfigError):
        return None


# A session whose process runs (and is not stopped): `labkit status` says running, halted or stale.
LIVE_WORDS = frozenset({"running", "halted", "stale"})


def unhealthy(status: dict[str, Any], age: float | None, limit: float | None) -> str | None:
    """Return why `/health` names a session (stale or dead), or None when it does not.

    A session whose process is gone while its heartbeat says running is dead. One whose process
    runs is stale past `limit` seconds since its last heartbeat; with no limit, exactly when
    `labkit status` says stale. A stopped session is never named.
    """
    word = status["status_word"]
    if word == "dead":
        return f"its heartbeat says running but pid {status.get('pid')} is gone"
    if word not in LIVE_WORDS:
        return None
    late = word == "stale" if limit is None else (age is None or age > limit)
    if late:
        return f"its process runs but last beat {'never' if age is None else f'{age:.1f} s ago'}"
    return None


def _named(status: dict[str, Any], age: float | None, why: str) -> dict[str, Any]:
    return {
        "session": status["session"],
        "status_word": status["status_word"],
        "pid": status.get("pid"),
        "last_beat": status.get("last_beat"),
        "heartbeat_age_seconds": age,
        "why": why,
    }


def _parameters(
    request: Request, allowed: dict[str, tuple[int, int, int]], keys: list[str]
) -> dict[str, int]:
    # Integers only, each at most once, within its bounds; anything else names the parameter. What
    # the client sent is quoted only when it cannot hold a key (`harmless`): never a key, even in part.
    values = {name: default for name, (_, _, default) in allowed.items()}
    seen: set[str] = set()
    for name, text in request.query_params.multi_items():
        if name not in allowed:
            hint = f"allowed: {', '.join(allowed)}" if allowed else "this route takes no parameter"
            if not harmless(name, keys):
                what = "a parameter this route does not take (not quoted)"
                raise ApiError(400, f"query: {what}; {hint}", "query")
            raise ApiError(400, f"{shown(name)}: not a parameter of this route; {hint}", shown(name))
        if name in seen:
            raise ApiError(400, f"{name}: given more than once", name)
        seen.add(name)
        low, high, _ = allowed[name]
        if not _INTEGER.fullmatch(text) or not low <= int(text) <= high:
            what = f"must be a whole number from {low} to {high:,}"
            got = shown(text) if harmless(text, keys) else f"{len(text)} characters, not quoted"
            raise ApiError(400, f"{name}: {what} (got {got})", name)
        values[name] = int(text)
    return values


async def _body(request: Request, action: str) -> dict[str, Any]:
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_BODY:
        raise ApiError(413, f"body: at most {MAX_BODY} bytes of JSON", "body")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ApiError(413, f"body: at most {MAX_BODY} bytes of JSON", "body")
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "body: not JSON; send nothing, or a JSON object", "body") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"body: a JSON object is expected, not a JSON {type(data).__name__}", "body")
    allowed = {"on"} if action == "reduce-only" else set()
    for key in data:
        if key not in allowed:
            hint = "allowed: on (true or false)" if allowed else f"{action} takes no field"
            raise ApiError(400, f"body.{shown(key)}: unknown field; {hint}", f"body.{shown(key)}")
    if "on" in data and not isinstance(data["on"], bool):
        raise ApiError(400, "body.on: true or false", "body.on")
    return dict(data)


def _command(paths: SessionPaths, action: str, args: dict[str, Any]) -> tuple[str, str]:
    from labkit.operations import CONFIRM_WAIT
    from labkit.session.control import NOT_CONFIRMED, RUN_ENDED, command_session

    try:
        how = command_session(paths, COMMANDS[action], wait=CONFIRM_WAIT, **args)
    except ConfigError as exc:
        if not paths.exists():
            raise _no_session(paths.name) from None
        raise ApiError(409, f"name: the session cannot take a command now: {exc}", "name") from None
    if how == NOT_CONFIRMED:
        # A stop is never left queued, where it would end the next run: it was cancelled.
        raise ApiError(
            409,
            f"name: the running session did not acknowledge the stop within {CONFIRM_WAIT:g} s (stuck or "
            f"suspended); the stop was cancelled, so it cannot end a later run. Nothing was stopped: "
            f"check GET /api/sessions/{paths.name}",
            "name",
        )
    if how == RUN_ENDED:
        return "applied", "not running: its run ended before it applied the stop"
    if how == "applied":
        if action == "stop":
            return "applied", "not running: nothing to stop"
        return "applied", "applied: the session is not running, so its saved state took it at once"
    if how == "applied by the running session":
        return "applied_by_running_session", "applied by the running session"
    return "queued", (
        f"queued: the running session applies it between bars; not confirmed within {CONFIRM_WAIT:g} s"
    )


# --- errors ------------------------------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.field, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(404, "path: no such route or file (docs/serve.md lists the routes)", "path")
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        message = f"method: {request.method} is not allowed here; allowed: {allow}"
        return error_response(405, message, "method", exc.headers)
    return error_response(exc.status_code, str(exc.detail), None, exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed: %s", request.method, request.url.path[:200], type(exc).__name__)
    return error_response(500, "internal error; the server's log says more", None)


# --- headers, hostile paths, rate limit ---------------------------------------------------------------


class _Guard:
    """Refuse hostile paths and clients past their rate; add the security headers to every answer."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        loopback_only: bool = False,
        forwarded_header: str | None = None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.loopback_only = loopback_only
        self.forwarded_header = forwarded_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                _secure(MutableHeaders(scope=message), path)
            await send(message)

        refusal = self._refusal(scope, path)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope, path: str) -> Response | None:
        raw = scope.get("raw_path") or path.encode("utf-8", "surrogateescape")
        if len(raw) > MAX_PATH or len(path) > MAX_PATH:
            return error_response(414, f"path: longer than {MAX_PATH} bytes", "path")
        if len(scope.get("query_string", b"")) > MAX_QUERY:
            return error_response(414, f"query: longer than {MAX_QUERY} bytes", "query")
        if _CONTROL_CHARS.search(path):
            return error_response(400, "path: has a control character (%00 to %1F or %7F)", "path")
        if self.loopback_only and not _loopback_host(scope):
            return error_response(
                400,
                "Host: this server listens on loopback and answers only requests for 127.0.0.1, ::1 or "
                "localhost (a proxy in front of it sends one of them as Host)",
                "Host",
            )
        if path == "/" or path.startswith("/static/"):
            return None  # the page and its assets are not counted
        wait = self.limiter.take(self._client(scope))
        if wait:
            return error_response(
                429,
                f"rate: more than serve.rate_limit_per_minute ({self.limiter.capacity:g}) requests; "
                f"retry after {wait} s",
                "rate",
                {"Retry-After": str(wait)},
            )
        return None

    def _client(self, scope: Scope) -> str:
        # The connection's address, or behind a proxy the last address of the header it sets.
        peer = scope.get("client")
        forwarded = None
        if self.forwarded_header:
            sent = Headers(scope=scope).getlist(self.forwarded_header)
            forwarded = sent[-1] if sent else None
        return client_name(peer[0] if peer else None, forwarded)


def _loopback_host(scope: Scope) -> bool:
    # The Host header's name (without its port, IPv6 brackets removed); no Host is no browser's.
    host = Headers(scope=scope).get("host")
    if host is None:
        return True
    name = host.rsplit("]", 1)[0].lstrip("[") if host.startswith("[") else host.rsplit(":", 1)[0]
    return is_loopback(name)


def _secure(headers: MutableHeaders, path: str) -> None:
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Content-Security-Policy"] = REPORT_CSP if path.startswith("/reports/") else PAGE_CSP
    if path.startswith(("/static/", "/reports/")):
        headers.setdefault("Cache-Control", "no-cache")
    else:
        headers["Cache-Control"] = "no-store"
