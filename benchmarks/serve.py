"""`labkit serve` under load: latency of `/health` and `/api/sessions` with 50 clients at once.

Starts `labkit serve` in a child process over a home of a few replayed sessions (two of them
marked running, beating from this process), then 50 clients on this machine, each on its own
keep-alive connection, ask one route as fast as the answers come for a few seconds. Prints the
requests made and the p50, p99 and worst latency of each route. A script that prints figures, not
a test: the figures depend on the machine.

    .venv/bin/python benchmarks/serve.py [--clients 50] [--seconds 5] [--sessions 6]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402

from labkit.session.paths import session_paths  # noqa: E402
from labkit.timeutil import iso_ms, now_ms  # noqa: E402
from tests import stubs  # noqa: E402

ROUTES = ("/health", "/api/sessions")


def make_home(home: Path, sessions: int) -> None:
    """Replay `sessions` short sessions; mark two as running, beating from this process."""
    for number in range(sessions):
        stubs.replayed_session(home, f"s{number}", "2026-01-05", "2026-01-05T06:00")
    for number in range(min(2, sessions)):
        beat(home, f"s{number}")


def beat(home: Path, name: str) -> None:
    heartbeat = session_paths(home, name).heartbeat
    fields = orjson.loads(heartbeat.read_bytes()) if heartbeat.exists() else {}
    fields.update(pid=os.getpid(), status="running", last_beat=iso_ms(now_ms()))
    heartbeat.write_bytes(orjson.dumps(fields))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def ready(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise SystemExit(f"labkit serve did not listen on port {port} within {timeout:g} s")


async def get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> int:
    """Send one GET on a keep-alive connection; read the whole answer; return its status."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def client(port: int, path: str, until: float, latencies: list[float], failures: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < until:
            start = time.perf_counter()
            status = await get(reader, writer, path)
            latencies.append(time.perf_counter() - start)
            if status >= 400 and status != 503:  # 503 is /health's answer for a stale session
                failures.append(status)
    finally:
        writer.close()


async def load(port: int, clients: int, seconds: float) -> dict[str, tuple[list[float], list[int]]]:
    results: dict[str, tuple[list[float], list[int]]] = {}
    for path in ROUTES:
        latencies: list[float] = []
        failures: list[int] = []
        until = time.monotonic() + seconds
        await asyncio.gather(*(client(port, path, until, latencies, failures) for _ in range(clients)))
        results[path] = (latencies, failures)
    return results


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sessions", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        make_home(home, args.sessions)
        port = free_port()
        env = {**os.environ, "LABKIT_SERVE__RATE_LIMIT_PER_MINUTE": "1000000"}
        server = stubs.start_labkit(home, "serve", "--port", str(port), stderr=subprocess.DEVNULL, env=env)
        try:
            asyncio.run(ready(port))
            results = asyncio.run(load(port, args.clients, args.seconds))
        finally:
            server.terminate()
            server.wait(timeout=20)
    cores = os.cpu_count()
    print(f"{args.clients} clients, {args.seconds:g} s per route, {args.sessions} sessions ({cores} cores)")
    print(f"{'route':<16}{'requests':>10}{'failed':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for path, (latencies, failures) in results.items():
        p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
        worst = max(latencies) * 1000
        print(f"{path:<16}{len(latencies):>10}{len(failures):>8}{p50:>9.1f}{p99:>9.1f}{worst:>9.1f}")


if __name__ == "__main__":
    main()
