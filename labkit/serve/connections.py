"""Connections a slow or hostile client cannot hoard: a deadline to send a request, a cap on how many.

uvicorn keeps a connection open for as long as its client sends a request slowly, a byte now and
then (slowloris), and accepts connections until the process runs out of file descriptors; then
nothing is accepted, `/health` included. `guarded_protocol` returns uvicorn's HTTP/1.1 protocol
with two limits:

- **a request deadline**: from a connection's opening, and from the first byte of each later
  request, the client has `request_timeout` seconds to send the whole request (line, headers and
  body); then the connection is closed without an answer. Between requests, uvicorn's own
  keep-alive timeout closes an idle connection;
- **a cap**: past `max_connections` open connections, each new one closes the connection that has
  been waiting longest for a request (one whose request has not fully arrived, or an idle
  keep-alive one). A connection whose request is being answered is never closed for room; when
  all are, uvicorn's `limit_concurrency` answers 503.

`connection_limits` sizes the cap from the file descriptors the process may open.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

# Descriptors kept for everything but connections: journals, state files, reports, logs, imports.
RESERVED_FDS = 128
MAX_CONNECTIONS = 4096
MAX_BACKLOG = 2048
# A request still arriving: its client owes bytes.
_ARRIVING = (h11.IDLE, h11.SEND_BODY)


def raise_fd_limit(most: int = 65_536) -> int:
    """Raise this process's soft limit of open files to its hard limit (at most `most`); return it.

    Windows has no such limit to raise (no `resource` module): its default C runtime limit, 512, is
    what the cap is sized from there.
    """
    try:
        import resource
    except ImportError:
        return 512
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = most if hard == resource.RLIM_INFINITY else min(hard, most)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass  # a limit the process may not raise: size the cap from the one it has
    return most if soft == resource.RLIM_INFINITY else int(soft)


def connection_limits(fd_limit: int) -> tuple[int, int]:
    """Return (the connection cap, the listen backlog) for a process that may open `fd_limit` files.

    One burst of accepts (up to the backlog) may arrive before the connections it pushes past the
    cap are closed, so cap and bursts stay within what is left after `RESERVED_FDS`.
    """
    spare = max(64, fd_limit - RESERVED_FDS)
    backlog = max(16, min(MAX_BACKLOG, spare // 8))
    return max(16, min(MAX_CONNECTIONS, spare - 3 * backlog)), backlog


def guarded_protocol(request_timeout: float, max_connections: int) -> type[H11Protocol]:
    """Return uvicorn's HTTP/1.1 protocol with a request deadline and a cap on open connections.

    Each call returns a class of its own, with its own register of waiting connections: one per
    server.
    """
    # Connections waiting for a request (oldest first): the ones closed to make room.
    waiting: OrderedDict[int, _Guarded] = OrderedDict()

    class _Guarded(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            waiting[id(self)] = self
            self._arm()
            while len(self.connections) > max_connections and self._close_oldest_waiting():
                pass

        def connection_lost(self, exc: Exception | None) -> None:
            waiting.pop(id(self), None)
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._follow()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                waiting[id(self)] = self
                waiting.move_to_end(id(self))
                self._follow()

        def _follow(self) -> None:
            # A request whose bytes are still coming runs against the deadline; one read whole,
            # or an idle keep-alive connection (uvicorn's timeout), does not.
            idle = self.conn.their_state is h11.IDLE and not self.conn.trailing_data[0]
            if self.conn.their_state in _ARRIVING and not (idle and self._answered()):
                self._arm()
            else:
                self._disarm()

        def _answered(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(request_timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if self.conn.their_state in _ARRIVING and not self.transport.is_closing():
                self._drop()

        def _drop(self) -> None:
            # Its descriptor goes at once; uvicorn forgets it now, so the count makes room now.
            waiting.pop(id(self), None)
            self._disarm()
            self.connections.discard(self)
            self.transport.abort()

        def _close_oldest_waiting(self) -> bool:
            while waiting:
                _, oldest = waiting.popitem(last=False)
                if oldest is self:
                    waiting[id(self)] = self  # the newest is not the one to close
                    if len(waiting) == 1:
                        return False
                    continue
                if oldest.conn.their_state in _ARRIVING and oldest._answered():
                    oldest._drop()
                    return True
                # Being answered: not waiting any more; it comes back to the register when its
                # answer is sent.
            return False

    return _Guarded
