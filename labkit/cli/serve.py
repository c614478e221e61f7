"""`labkit serve`: the HTTP API, health check, Prometheus metrics and live page over the home."""

from __future__ import annotations

import argparse

from labkit.cli.common import home_of, load


def cmd_serve(args: argparse.Namespace) -> int:
    from labkit.serve.server import serve

    home = home_of(args)
    config = load(args, {"serve.host": args.host, "serve.port": args.port})
    return serve(home, config)
