"""Running the service: check the bind, bind the socket, then uvicorn until SIGTERM or Ctrl-C.

The socket is bound here, before uvicorn starts, so a port in use or a host that does not resolve
is an error naming ``--port`` or ``--host`` (exit 2) rather than a log line. Every log record the
server writes (uvicorn's access lines included) passes through `RedactSecrets`, the API keys masked
whole, and is cut past `MAX_LOG_LINE` characters: a hostile request cannot fill the log with its
path. An access line shows a query's route parameters (``after_seq``, ``limit``, ``points``) and
nothing else a client sent there but harmless names (`labkit.serve.guard.harmless`).

Slow clients cannot starve it (`labkit.serve.connections`): a request must arrive whole within
`REQUEST_TIMEOUT` seconds, an idle keep-alive connection closes after `KEEP_ALIVE` seconds, and the
connections open at once are capped below the process's file descriptors, the longest waiting
closed first to make room.
"""

from __future__ import annotations

import logging
import re
import signal
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.config.schema import LabkitConfig
from labkit.errors import ConfigError
from labkit.serve.guard import api_keys, check_bind, harmless, is_loopback

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("labkit.serve")
MAX_LOG_LINE = 2000
REQUEST_TIMEOUT = 10.0  # seconds for a request (line, headers, body) to arrive whole
KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open
# The query parameters the routes take, shown in access lines; any other value is never shown.
ROUTE_PARAMETERS = frozenset({"after_seq", "limit", "points", "lines"})
_NUMBER = re.compile(r"-?[0-9]{1,18}")
# uvicorn's own loggers; their records reach the root logger's handlers (labkit's terminal handler).
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class _Stopped(Exception):
    """SIGTERM arrived: uvicorn has shut down gracefully (or had not started yet)."""


def serve(home: Path, config: LabkitConfig) -> int:
    """Serve `home` until SIGTERM or Ctrl-C; return the exit code (0 after a graceful stop).

    Raises
    ------
    ConfigError
        A non-loopback host without ``serve.api_keys``, an unfit key, or a host or port that
        cannot be listened on.
    """
    import psutil

    from labkit.config.loading import secret_values
    from labkit.serve.app import create_app

    settings = config.serve
    check_bind(settings)
    keys = api_keys(settings)
    app = create_app(home, config, loopback_only=is_loopback(settings.host))
    sock = bind(settings.host, settings.port)
    server = uvicorn_server(app)
    control = f"on ({len(keys)} key{'s' if len(keys) != 1 else ''})" if keys else "off (no serve.api_keys)"
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with redacted_logs(secret_values(config), keys=keys):
            log.info(
                "serving %s on %s; control endpoints %s (started in %.2f s)",
                home,
                url(sock),
                control,
                time.time() - psutil.Process().create_time(),
            )
            with suppress(_Stopped):
                server.run(sockets=[sock])
            log.info("stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    return 0


def uvicorn_server(app: Any, request_timeout: float = REQUEST_TIMEOUT) -> uvicorn.Server:
    """Return the uvicorn server `serve` runs `app` on, its limits sized from the file descriptors.

    The soft limit of open files is raised to the hard one first; the cap of open connections, the
    listen backlog and `limit_concurrency` follow from it (`labkit.serve.connections`).
    """
    import uvicorn

    from labkit.serve.connections import connection_limits, guarded_protocol, raise_fd_limit

    max_connections, backlog = connection_limits(raise_fd_limit())
    return uvicorn.Server(
        uvicorn.Config(
            app,
            http=guarded_protocol(request_timeout, max_connections),
            log_config=None,
            log_level="info",
            access_log=True,
            proxy_headers=False,  # the client's address is the socket's: a header cannot dodge the rate
            server_header=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
            timeout_keep_alive=KEEP_ALIVE,
            # Past the cap, only when every connection is being answered: those get 503.
            limit_concurrency=max_connections + 1,
            backlog=backlog,
        )
    )


def _on_sigterm(signum: int, frame: object) -> None:
    # uvicorn handles SIGTERM while it runs, then raises it again once it has shut down: end here.
    raise _Stopped


def bind(host: str, port: int) -> socket.socket:
    """Return a socket bound to `host`:`port` (IPv4 first when a name has both)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise ConfigError(f"--host: cannot listen on {host!r}: {reason}") from None
    family, kind, proto, _, address = sorted(infos, key=lambda info: info[0] != socket.AF_INET)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--port: cannot listen on {host} port {port}: {exc.strerror or exc}") from None
    return sock


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class _ShortLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > MAX_LOG_LINE:
            record.msg, record.args = f"{message[:MAX_LOG_LINE]}... ({len(message)} characters)", ()
        return True


class _QuietQuery(logging.Filter):
    # uvicorn's access line: (client, method, path?query, HTTP version, status). Run before the
    # redaction, on the access logger itself.
    def __init__(self, keys: Iterable[str]) -> None:
        super().__init__()
        self.keys = list(keys)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], quiet_query(args[2], self.keys), *args[3:])
        return True


def quiet_query(target: str, keys: Iterable[str] = ()) -> str:
    """Return a request target as an access line may show it: no value of its query but a route's.

    ``/api/sessions/s1/decisions?after_seq=40&limit=5`` stays as it is; in
    ``/api/sessions?key=...&x`` every value becomes ``****``, and so does any name that is not
    `harmless` (it might be a key).
    """
    path, _, query = target.partition("?")
    keys = list(keys)
    shown = []
    for pair in query.split("&"):
        name, equals, value = pair.partition("=")
        if name in ROUTE_PARAMETERS and _NUMBER.fullmatch(value):
            shown.append(pair)
        elif pair:
            shown.append(f"{name if harmless(name, keys) else '****'}{'=****' if equals else ''}")
    return f"{path}?{'&'.join(shown)}"


@contextmanager
def redacted_logs(secrets: Iterable[str], keys: Iterable[str] = ()) -> Iterator[None]:
    """Mask `secrets`, and `keys` whole, in every record the root logger's and uvicorn's loggers write.

    An access line's query shows only route parameters (`quiet_query`).
    """
    from labkit.session.logs import RedactSecrets

    keys = list(keys)
    quiet = _QuietQuery(keys)
    filters: list[logging.Filter] = [RedactSecrets([*keys, *secrets], whole=keys), _ShortLines()]
    targets: list[logging.Filterer] = [*logging.getLogger().handlers]
    for name in UVICORN_LOGGERS:
        targets += [logging.getLogger(name), *logging.getLogger(name).handlers]
    access = logging.getLogger("uvicorn.access")
    access.addFilter(quiet)
    for target in targets:
        for f in filters:
            target.addFilter(f)
    try:
        yield
    finally:
        for target in targets:
            for f in filters:
                target.removeFilter(f)
        access.removeFilter(quiet)
