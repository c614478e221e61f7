"""Running the service: check the bind, bind the socket, then uvicorn until SIGTERM or Ctrl-C.

The socket is bound here, before uvicorn starts, so a port in use or a host that does not resolve
is an error naming ``--port`` or ``--host`` (exit 2) rather than a log line. Every log record the
server writes (uvicorn's access lines included) passes through `RedactSecrets` with the API keys,
and is cut past `MAX_LOG_LINE` characters: a hostile request cannot fill the log with its path.
"""

from __future__ import annotations

import logging
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from labkit.config.schema import LabkitConfig
from labkit.errors import ConfigError
from labkit.serve.guard import api_keys, check_bind, is_loopback

log = logging.getLogger("labkit.serve")
MAX_LOG_LINE = 2000
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
    import uvicorn

    from labkit.config.loading import secret_values
    from labkit.serve.app import create_app

    settings = config.serve
    check_bind(settings)
    keys = api_keys(settings)
    app = create_app(home, config, loopback_only=is_loopback(settings.host))
    sock = bind(settings.host, settings.port)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,
            log_level="info",
            access_log=True,
            proxy_headers=False,  # the client's address is the socket's: a header cannot dodge the rate
            server_header=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
    )
    control = f"on ({len(keys)} key{'s' if len(keys) != 1 else ''})" if keys else "off (no serve.api_keys)"
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with redacted_logs([*keys, *secret_values(config)]):
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


@contextmanager
def redacted_logs(secrets: list[str]) -> Iterator[None]:
    """Mask `secrets` in every record the root logger's handlers and uvicorn's loggers write."""
    from labkit.session.logs import RedactSecrets

    filters: list[logging.Filter] = [RedactSecrets(secrets), _ShortLines()]
    targets: list[logging.Filterer] = [*logging.getLogger().handlers]
    for name in UVICORN_LOGGERS:
        targets += [logging.getLogger(name), *logging.getLogger(name).handlers]
    for target in targets:
        for f in filters:
            target.addFilter(f)
    try:
        yield
    finally:
        for target in targets:
            for f in filters:
                target.removeFilter(f)
