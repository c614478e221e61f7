"""The errors labkit raises, each with the process exit code the command line uses for it."""

from __future__ import annotations


class LabkitError(Exception):
    """Base of every error labkit raises on purpose; `exit_code` is what `labkit` exits with."""

    exit_code = 1


class ConfigError(LabkitError):
    """A configuration value, flag or environment variable is invalid (exit 2)."""

    exit_code = 2


class DataError(LabkitError):
    """Market data broke a rule (unsorted, duplicate, NaN...) or could not be read (exit 2)."""

    exit_code = 2


class SessionBusyError(LabkitError):
    """Another process holds the session's run lock (exit 3)."""

    exit_code = 3


class SourceUnavailableError(LabkitError):
    """A data source stayed unavailable after its retries (exit 4)."""

    exit_code = 4


class CheckFailedError(LabkitError):
    """An operational or readiness check failed (exit 1)."""

    exit_code = 1


class NotebookRunError(LabkitError):
    """A report notebook failed; its HTML still shows the failure (exit 1)."""

    exit_code = 1


class NotFittedError(LabkitError):
    """A model was used before `fit`."""

    exit_code = 1
