"""The `labkit` command line. Each subcommand turns flags into config overrides and calls labkit.

Exit codes: 0 ok, 1 a check failed, 2 bad input, 3 another instance holds the session, 4 a data
source stayed unavailable. Building the parser imports nothing heavy, so `labkit --help` stays
quick; what needs pandas (source kinds, strategy names) is looked up when a command's own help is
shown or the command runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from labkit.cli.common import check_finite_flags, with_flags
from labkit.errors import LabkitError
from labkit.home import resolve_home

log = logging.getLogger("labkit")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code.

    Parameters
    ----------
    argv
        The arguments after ``labkit``; None reads ``sys.argv``.
    """
    from labkit.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    with _stderr_logging(_log_level(args)):
        try:
            check_finite_flags(args)
            return int(args.handler(args) or 0)
        except LabkitError as exc:
            print(f"labkit {args.command}: {with_flags(str(exc))}", file=sys.stderr)
            return exc.exit_code
        except OSError as exc:
            # A full disk, a read-only home, a directory where a file belongs: the user can fix
            # these, and a traceback would hide which file and why.
            print(f"labkit {args.command}: {_describe_os_error(exc, args)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130


def _describe_os_error(exc: OSError, args: argparse.Namespace) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is None:
        return reason
    where = _shown_path(exc.filename, args)
    if exc.filename2 is not None:
        where += f" -> {_shown_path(exc.filename2, args)}"
    return f"{where}: {reason}"


def _shown_path(filename: object, args: argparse.Namespace) -> str:
    # Files under the home are shown from it (data/sessions/x/run.lock), as the docs name them.
    path = Path(os.fsdecode(filename)) if isinstance(filename, str | bytes | os.PathLike) else None
    if path is None:
        return str(filename)
    try:
        return str(path.relative_to(resolve_home(getattr(args, "home", None))))
    except (ValueError, LabkitError, OSError):
        return str(path)


def _log_level(args: argparse.Namespace) -> int:
    # A session logs its gates and progress, the server its requests; other commands print results
    # and only warn.
    chosen = {"debug": logging.DEBUG, "quiet": logging.WARNING}
    return chosen.get(args.verbosity, logging.INFO if args.command in ("run", "serve") else logging.WARNING)


@contextmanager
def _stderr_logging(level: int) -> Iterator[None]:
    # The level sits on the terminal's handler, not only on loggers: a session lifts the labkit
    # logger to INFO for its own log file, and -q must still keep those records off the terminal.
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root, ours = logging.getLogger(), logging.getLogger("labkit")
    saved = root.level, ours.level
    root.addHandler(handler)
    # Only ever lower the root level: the handler does the filtering, and a host that already
    # listens at a finer level (a notebook, a test) keeps hearing it.
    root.setLevel(min(level, saved[0]) if saved[0] else level)
    if level <= logging.DEBUG:
        ours.setLevel(level)  # else a session would lift it to INFO and hide -v's details
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        ours.setLevel(saved[1])
