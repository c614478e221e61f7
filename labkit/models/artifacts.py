"""Saved models: ``data/models/<model_id>/`` under the labkit home, checked before every load.

A model folder holds ``model.json`` (what the model is, how it was trained, the calibrator, the
sha256 of every member file, the library versions) and one sub-folder per member. The id is a
digest of that content (``ens-`` + 12 hex digits of the sha256 of model.json without its id and
date), so the same model saved twice is the same folder, and an edited model.json no longer
matches its id. A folder is written under a hidden name and renamed whole: a crash leaves no
half model.

``created_at`` is when the folder was first written; ``trained_at`` is when a training run last
produced it. Saving identical content again (a retrain on the same bars) refreshes
``trained_at`` in place, so ``latest`` means the most recently trained model. Neither time is
part of the id.

A model pooled over a universe records ``symbols`` (the list, in the universe's order) beside
``symbol`` (their comma-joined list); it loads for any symbol of the list, and ``latest`` of a
universe means the latest trained on the same list.

Loading refuses, with `ConfigError` (exit 2 at the command line), anything it cannot vouch for: an
id that is not an id, an unknown id, an edited model.json, a member file missing or changed, a
skops file naming a type no member uses, and libraries too far from the ones that saved it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import os
import platform
import re
import secrets
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from labkit._io import fsync_dir, make_private_dir, read_json, write_atomic, write_json_atomic
from labkit.errors import ConfigError
from labkit.home import as_path
from labkit.models.ensemble import Calibrator, Ensemble
from labkit.models.members import Member, load_member

FORMAT = 1  # model.json's layout; a newer one is refused rather than half understood
_ID = re.compile(r"[a-z]+-[0-9a-f]{12}", re.ASCII)
_KIND = re.compile(r"[a-z]{1,16}", re.ASCII)
# A file saved beside the members: a plain name with an extension (out_of_sample.parquet), so
# never a member's folder ("0-xgboost"), a hidden name or a path.
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\.[A-Za-z0-9]{1,16}", re.ASCII)
# What save_model writes such a file from: its bytes, or a function writing them to an open file.
FileContent = bytes | Callable[[BinaryIO], object]
_MEMBER_PATH = re.compile(r"([0-9]{1,3}-[a-z]+)/([a-z]+\.(?:ubj|skops))", re.ASCII)
# Written by save_model itself, never taken from `meta`.
_RESERVED = ("model_id", "created_at", "trained_at", "format", "members", "calibrator", "versions")
# Written beside the content and left out of the id: when the folder was made, when last trained.
_UNHASHED = ("model_id", "created_at", "trained_at")
_LIBRARIES = {  # name in model.json -> (distributions to ask, module)
    "numpy": (("numpy",), "numpy"),
    "scikit-learn": (("scikit-learn",), "sklearn"),
    "xgboost": (("xgboost", "xgboost-cpu"), "xgboost"),
    "skops": (("skops",), "skops"),
}
_NEEDS = {"xgboost": ("numpy", "xgboost"), "logistic": ("numpy", "scikit-learn", "skops")}
_NEEDS["forest"] = _NEEDS["bagged"] = _NEEDS["logistic"]
_SHOWN_IDS = 10


@dataclass(frozen=True)
class LoadedModel:
    """A model read back from disk and checked: its id, ensemble, model.json and folder."""

    model_id: str
    ensemble: Ensemble
    meta: dict[str, Any]
    path: Path

    @property
    def schema(self) -> dict[str, Any]:
        """The feature schema the model was trained on (model.json's ``features``)."""
        return self.ensemble.schema


def models_dir(home: Path) -> Path:
    """Return the folder holding the saved models of `home`."""
    return home / "data" / "models"


def save_model(
    home: Path,
    ensemble: Ensemble,
    meta: Mapping[str, Any],
    files: Mapping[str, FileContent] | None = None,
    on_installed: Callable[[str], object] | None = None,
) -> str:
    """Save `ensemble` under `home` and return its model id; saving the same model again is a no-op.

    Every file of the model, `files` included, is written inside a hidden staging folder, which is
    renamed into place whole: a full disk or a kill leaves no model, or the whole one. The same
    model saved before keeps its folder; a file of `files` it lacks is added to it.

    Parameters
    ----------
    home
        The labkit home; the model goes to ``data/models/<model_id>/``.
    ensemble
        The fitted ensemble (members, weights, calibrator, feature schema, out-of-fold losses).
    meta
        What the training knows: ``symbol`` and ``timeframe`` (required), ``symbols`` (a pooled
        model's universe, distinct names), ``source``, ``window``
        (``{"since", "until", "bars"}``), ``data_hash``, ``horizon``, ``params``, ``folds``
        (per-fold metrics), ``git_sha``; other keys are kept as given. ``kind`` (default
        ``"ens"``) prefixes the id.
    files
        Files saved beside the members (``out_of_sample.parquet``), by plain name: their bytes, or
        a function writing them to an open file. They are no part of the id.
    on_installed
        Called with the id once the folder is in place (`labkit train` records its trial). When it
        raises, or is interrupted, a folder this call installed is withdrawn, so no model is listed
        without what follows it; a folder saved before stays.

    Raises
    ------
    ConfigError
        When `meta` lacks the symbol or timeframe, uses a reserved key, or holds what JSON cannot,
        or a name of `files` is not a plain new file name.
    OSError
        When a file cannot be written (a full disk), naming the model's file; nothing is installed.
    """
    info: dict[str, Any] = _plain(dict(meta), "meta")
    for key in ("symbol", "timeframe"):
        if not isinstance(info.get(key), str) or not info[key]:
            raise ConfigError(f"save_model: meta.{key} is required (a non-empty string)")
    if "symbols" in info:
        _check_symbols(info["symbols"])
    if used := [key for key in _RESERVED if key in info]:
        raise ConfigError(f"save_model: meta may not set {', '.join(used)}; save_model writes them")
    kind = info.pop("kind", "ens")
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise ConfigError(f"save_model: meta.kind {kind!r} must be 1-16 lowercase letters")
    if "features" in info and info["features"] != _plain(ensemble.schema, "features"):
        raise ConfigError("save_model: meta.features differs from the ensemble's schema")
    git_sha = info.pop("git_sha", None)
    extra = _check_file_names(files or {})

    root = make_private_dir(models_dir(home))
    _clean_leftovers(root)
    staging = root / f".new-{os.getpid()}-{secrets.token_hex(4)}"
    make_private_dir(staging)
    try:
        doc = {
            "format": FORMAT,
            "kind": kind,
            "symbol": info.pop("symbol"),
            "timeframe": info.pop("timeframe"),
            **({"symbols": info.pop("symbols")} if "symbols" in info else {}),
            "source": info.pop("source", None),
            "features": _plain(ensemble.schema, "features"),
            "window": info.pop("window", None),
            "data_hash": info.pop("data_hash", None),
            "horizon": info.pop("horizon", None),
            "params": info.pop("params", {}),
            "members": _save_members(staging, ensemble),
            "calibrator": ensemble.calibrator.to_json(),
            "folds": info.pop("folds", []),
            "versions": {**library_versions(), "git_sha": git_sha},
            **info,
        }
        model_id = f"{kind}-{_digest(doc)[:12]}"
        final = root / model_id
        now = _now_text()
        if _intact(final, model_id):
            _write_files(final, final, {n: c for n, c in extra.items() if not (final / n).is_file()})
            _mark_trained(final, now)
            installed = False
        else:
            _write_files(staging, final, extra)
            stamped = {"model_id": model_id, "created_at": now, "trained_at": now, **doc}
            write_json_atomic(staging / "model.json", stamped)
            installed = _install(staging, final, model_id)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    if on_installed is not None:
        _then_or_withdraw(on_installed, final, model_id, installed)
    return model_id


def load_model(
    home: str | Path, ref: str, symbol: str | None = None, timeframe: str | None = None
) -> LoadedModel:
    """Load and check the model `ref` (an id, or ``latest``: the most recently trained for `symbol`
    and `timeframe`, by `model_trained_at`).

    A model pooled over a universe loads for any `symbol` of its ``symbols``.

    Raises
    ------
    ConfigError
        Naming what is wrong: not an id, an unknown id (with the known ones), no model to be the
        latest, a model of another symbol or timeframe, an edited model.json, a missing or changed
        member file, a type outside a member's allowlist, or a library version the model cannot
        be trusted across.
    """
    home = as_path(home, "home")
    root = models_dir(home)
    if ref == "latest":
        ref = _latest(root, symbol, timeframe)
    elif not isinstance(ref, str) or not _ID.fullmatch(ref):
        raise ConfigError(
            f"model {ref!r}: not a model id (ids look like ens-3f9a1c2b7d4e) nor 'latest'; "
            "`labkit models` lists them"
        )
    folder = root / ref
    if not folder.is_dir():
        raise ConfigError(_unknown(home, ref))
    doc = _read_checked(folder, ref)
    where = f"model {ref}"
    if (
        symbol is not None
        and not _covers(doc, symbol)
        or timeframe is not None
        and doc.get("timeframe") != timeframe
    ):
        raise ConfigError(
            f"{where} was trained on {doc.get('symbol')} {doc.get('timeframe')}, not "
            f"{symbol or doc.get('symbol')} {timeframe or doc.get('timeframe')}; train one for this "
            "market or pass its own id"
        )
    try:
        entries = list(doc["members"])
        kinds = {str(entry["kind"]) for entry in entries}
        check_versions(doc.get("versions") or {}, library_versions(), kinds, where)
        members = [_load_entry(folder, entry) for entry in entries]
        calibrator = Calibrator.from_json(doc["calibrator"])
        ensemble = Ensemble(
            members,
            [float(entry["weight"]) for entry in entries],
            calibrator,
            [dict(entry["schema"]) for entry in entries],
            [_float_or_nan(entry.get("oof_log_loss")) for entry in entries],
        )
        ensemble.schema = dict(doc["features"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{folder / 'model.json'}: unreadable ({exc!r}); train the model again") from None
    return LoadedModel(ref, ensemble, doc, folder)


def list_models(home: Path) -> list[dict[str, Any]]:
    """Return one summary per saved model, newest first; a broken folder is listed with its error.

    Newest means most recently trained (`model_trained_at`). A summary has ``id``, ``symbol``,
    ``symbols`` (a pooled model's universe, else None), ``timeframe``, ``created_at``,
    ``trained_at``, ``features`` (how many), ``window``, ``auc_mean`` (None when the training did
    not record it) and ``members`` (kinds). A broken one has ``id`` and ``error``, and comes last.
    Member files are checked for presence here; their digests are checked by `load_model`.
    """
    good: list[dict[str, Any]] = []
    broken: list[dict[str, Any]] = []
    for folder in _folders(models_dir(home)):
        try:
            doc = _read_checked(folder, folder.name)
            for entry in doc["members"]:
                for file in entry["files"]:
                    _member_path(folder, str(file["path"]))
                    if not (folder / file["path"]).is_file():
                        raise ConfigError(f"{folder / file['path']}: missing")
            good.append(
                {
                    "id": folder.name,
                    "symbol": doc.get("symbol"),
                    "symbols": doc.get("symbols"),
                    "timeframe": doc.get("timeframe"),
                    "created_at": doc.get("created_at"),
                    "trained_at": _trained_at(doc),
                    "features": len((doc.get("features") or {}).get("names") or []),
                    "window": doc.get("window"),
                    "auc_mean": _auc_mean(doc),
                    "members": [str(entry["kind"]) for entry in doc["members"]],
                }
            )
        except (ConfigError, KeyError, TypeError, ValueError, OSError) as exc:
            broken.append(
                {"id": folder.name, "error": str(exc) if isinstance(exc, ConfigError) else repr(exc)}
            )
    good.sort(key=lambda s: (_instant(s["trained_at"]), s["id"]), reverse=True)
    return good + sorted(broken, key=lambda s: s["id"])


def latest_model(
    home: Path, symbol: str | None, timeframe: str | None, symbols: list[str] | None = None
) -> str:
    """Return the id ``latest`` means for `symbol` and `timeframe`: the most recently trained.

    With `symbols` (a universe), the most recently trained model pooled over exactly that list.

    Raises
    ------
    ConfigError
        When no model of that market is saved under `home`, saying to train one.
    """
    return _latest(models_dir(home), symbol, timeframe, symbols)


def model_trained_at(home: Path, model_id: str) -> str | None:
    """Return when the model `model_id` was last trained (ISO 8601, UTC), or None when unknown.

    A model saved before ``trained_at`` existed answers with its ``created_at``.
    """
    doc = _readable(home, model_id)
    return None if doc is None else _trained_at(doc)


def in_sample_span(home: Path, model_id: str) -> tuple[int, int] | None:
    """Return the bars the model `model_id` has seen, as half-open epoch ms ``[since, until)``.

    That is its training window, from the first bar's open to the last bar's close, plus the
    embargo: the ``horizon`` bars after it, whose closes the last training labels looked ahead to.
    A bar opened inside the span is in sample: judging the model on it grades it on what it was
    fit to. None when the model is unknown or unreadable, or model.json lacks the window, the
    horizon or a timeframe.

    Examples
    --------
    A model trained on 1h bars opened 2026-01-01 00:00 .. 2026-03-25 08:00 with horizon 4 has
    seen bars opened up to 2026-03-25 12:00, which is excluded.
    """
    from labkit.timeutil import timeframe_ms

    doc = _readable(home, model_id)
    window = doc.get("window") if doc is not None else None
    if doc is None or not isinstance(window, Mapping):
        return None
    horizon = doc.get("horizon")
    since, until = _epoch_ms(window.get("since")), _epoch_ms(window.get("until"))
    if since is None or until is None or not isinstance(horizon, int) or isinstance(horizon, bool):
        return None
    try:
        bar = timeframe_ms(str(doc.get("timeframe")))
    except ConfigError:
        return None
    return since, until + (1 + max(0, horizon)) * bar


def library_versions() -> dict[str, str]:
    """Return the versions model.json records: python, the libraries and labkit itself."""
    out = {"python": platform.python_version()}
    for name, (distributions, module) in _LIBRARIES.items():
        out[name] = _version(distributions, module)
    out["labkit"] = _version(("labkit",), "labkit")
    return out


def check_versions(saved: Mapping[str, Any], current: Mapping[str, str], kinds: set[str], where: str) -> None:
    """Refuse a model whose members' libraries changed major version (scikit-learn: minor too).

    Raises
    ------
    ConfigError
        Naming the library, the version that saved the model and the one running now.
    """
    needed = sorted({name for kind in kinds for name in _NEEDS.get(kind, ())})
    for name in needed:
        was, now = saved.get(name), current.get(name, "unknown")
        if not isinstance(was, str):
            raise ConfigError(f"{where}: model.json does not say which {name} saved it; train it again")
        a, b = _major_minor(was), _major_minor(now)
        if a is None or b is None or a[0] != b[0]:
            raise ConfigError(
                f"{where}: saved with {name} {was}, this is {now}; a model is not loaded across "
                f"major versions of {name}. Train it again, or install {name} {was}"
            )
        if name == "scikit-learn" and a[1] != b[1]:
            raise ConfigError(
                f"{where}: saved with scikit-learn {was}, this is {now}; scikit-learn objects saved "
                "by skops are not portable across minor versions. Train it again, or install "
                f"scikit-learn {was}"
            )


# -- saving ------------------------------------------------------------------------------------


def _save_members(staging: Path, ensemble: Ensemble) -> list[dict[str, Any]]:
    out = []
    none: list[float | None] = [None] * len(ensemble.members)
    losses = none if ensemble.losses is None else list(ensemble.losses)
    rows = zip(ensemble.members, ensemble.weights, losses, ensemble.member_schemas, strict=True)
    for i, (member, weight, loss, schema) in enumerate(rows):
        sub = f"{i}-{member.kind}"
        folder = make_private_dir(staging / sub)
        files = []
        for name in member.save(folder):
            data = (folder / name).read_bytes()
            files.append(
                {"path": f"{sub}/{name}", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            )
        out.append(
            {
                "kind": member.kind,
                "params": _plain(member.params, "params"),
                "weight": float(weight),
                "oof_log_loss": None if loss is None or not np.isfinite(loss) else float(loss),
                "schema": _plain(schema, "schema"),
                "files": files,
            }
        )
    return out


def _check_file_names(files: Mapping[str, FileContent]) -> dict[str, FileContent]:
    # A file beside the members has a plain name of its own: never model.json, a member's folder,
    # a hidden name or a path out of the folder.
    for name in files:
        if not _FILE_NAME.fullmatch(name) or name == "model.json":
            raise ConfigError(
                f"save_model: files: {name!r} is not a plain file name beside the members "
                "(letters, digits, '_' and '-', then a '.ext'; not model.json)"
            )
    return dict(files)


def _write_files(folder: Path, shown: Path, files: Mapping[str, FileContent]) -> None:
    # Each file is written whole (atomically) into `folder`; a failure names it under `shown`, the
    # model's own folder, not the hidden staging one the user never sees.
    for name, content in files.items():
        try:
            write_atomic(folder / name, content)
        except OSError as exc:
            raise type(exc)(exc.errno, exc.strerror, str(shown / name)) from None


def _then_or_withdraw(step: Callable[[str], object], final: Path, model_id: str, installed: bool) -> None:
    # The step that follows installing (the trial) failed or was interrupted: a model this save
    # installed goes too. It is renamed to a staging name first, so a kill mid-removal leaves a
    # hidden folder that `_clean_leftovers` removes, never half a listed model.
    try:
        step(model_id)
    except BaseException:
        if installed:
            hidden = final.parent / f".new-{os.getpid()}-{secrets.token_hex(4)}"
            final.rename(hidden)
            shutil.rmtree(hidden, ignore_errors=True)
            fsync_dir(final.parent)
        raise


def _install(staging: Path, final: Path, model_id: str) -> bool:
    # Rename the staging folder into place; True when this call installed it, False when a rival
    # save of the same model got there first.
    try:
        staging.rename(final)
    except OSError:
        if _intact(final, model_id):
            return False
        if not final.exists():
            raise
        # A damaged folder under this id: set it aside (kept for inspection), then take its place.
        final.rename(final.parent / f".broken-{model_id}-{secrets.token_hex(3)}")
        staging.rename(final)
    fsync_dir(final.parent)
    return True


def _clean_leftovers(root: Path) -> None:
    # Staging folders of saves a kill interrupted (their process is gone).
    import psutil

    for staging in root.glob(".new-*"):
        pid = staging.name.split("-")[1]
        if not (pid.isdigit() and psutil.pid_exists(int(pid))):
            shutil.rmtree(staging, ignore_errors=True)


def _mark_trained(folder: Path, when: str) -> None:
    # Identical content trained again: the same folder, now the latest. model.json is replaced
    # whole (readers see the old file or the new); the time is outside the digest, so the id holds.
    doc = read_json(folder / "model.json")
    if doc is not None:
        write_json_atomic(folder / "model.json", {**doc, "trained_at": when})


def _intact(folder: Path, model_id: str) -> bool:
    if not (folder / "model.json").is_file():
        return False
    try:
        doc = _read_checked(folder, model_id)
        for entry in doc["members"]:
            for file in entry["files"]:
                path = _member_path(folder, str(file["path"]))
                if hashlib.sha256(path.read_bytes()).hexdigest() != file["sha256"]:
                    return False
    except (ConfigError, KeyError, TypeError, OSError):
        return False
    return True


# -- loading -----------------------------------------------------------------------------------


def _read_checked(folder: Path, model_id: str) -> dict[str, Any]:
    path = folder / "model.json"
    if not path.is_file():
        raise ConfigError(f"{path}: missing; the model folder is incomplete, train the model again")
    doc = read_json(path)
    if doc is None:
        raise ConfigError(f"{path}: not readable JSON; train the model again")
    if not isinstance(doc.get("format"), int) or doc["format"] > FORMAT:
        raise ConfigError(f"{path}: format {doc.get('format')!r} is not one this labkit reads ({FORMAT})")
    content = {k: v for k, v in doc.items() if k not in _UNHASHED}
    kind = doc.get("kind")
    digest = f"{kind}-{_digest(content)[:12]}"
    if doc.get("model_id") != model_id or digest != model_id:
        raise ConfigError(
            f"{path}: no longer hashes to its id {model_id} (it hashes to {digest}): it was edited "
            "after saving. Do not use this model: train it again"
        )
    return doc


def _load_entry(folder: Path, entry: Mapping[str, Any]) -> Member:
    kind = str(entry["kind"])
    paths = [_member_path(folder, str(file["path"])) for file in entry["files"]]
    subs = {path.parent for path in paths}
    if len(subs) != 1:
        raise ConfigError(f"{folder / 'model.json'}: a {kind} member's files span several folders")
    sha = {path.name: str(file["sha256"]) for path, file in zip(paths, entry["files"], strict=True)}
    member = load_member(subs.pop(), kind, [path.name for path in paths], entry.get("params") or {}, sha)
    member.schema = dict(entry["schema"])
    return member


def _member_path(folder: Path, relative: str) -> Path:
    # model.json names the files; a name is only ever "<i>-<kind>/<kind>.<ext>", never "../x".
    if not _MEMBER_PATH.fullmatch(relative):
        raise ConfigError(f"{folder / 'model.json'}: {relative!r} is not a member file name")
    return folder / relative


def _latest(root: Path, symbol: str | None, timeframe: str | None, symbols: list[str] | None = None) -> str:
    found = []
    for folder in _folders(root):
        doc = read_json(folder / "model.json")
        if doc is None or not _ID.fullmatch(folder.name) or doc.get("model_id") != folder.name:
            continue
        if doc.get("kind") == "meta":
            continue  # a meta model judges a strategy's entries (labkit.research.meta): never a signal model
        if symbols is not None and doc.get("symbols") != list(symbols):
            continue
        if symbols is None and symbol is not None and doc.get("symbol") != symbol:
            continue
        if timeframe is not None and doc.get("timeframe") != timeframe:
            continue
        found.append((_instant(_trained_at(doc)), folder.name))
    if not found:
        named = ",".join(symbols) if symbols is not None else symbol
        market = " ".join(part for part in (named, timeframe) if part) or "any market"
        how = "`labkit train --symbols ...`" if symbols is not None else "`labkit train`"
        raise ConfigError(f"model latest: no model for {market} under {root}; train one first ({how})")
    return max(found)[1]


def _covers(doc: Mapping[str, Any], symbol: str) -> bool:
    # A model is of its own symbol; a pooled one of every symbol it was pooled over too.
    pooled = doc.get("symbols")
    return doc.get("symbol") == symbol or isinstance(pooled, list) and symbol in pooled


def _check_symbols(symbols: Any) -> None:
    ok = isinstance(symbols, list) and symbols and all(isinstance(x, str) and x for x in symbols)
    if not ok or len(set(symbols)) != len(symbols):
        raise ConfigError("save_model: meta.symbols must be a list of distinct non-empty symbols")


def _readable(home: Path, model_id: str) -> dict[str, Any] | None:
    # model.json of a model whose id is an id and still matches its content, else None.
    if not isinstance(model_id, str) or not _ID.fullmatch(model_id):
        return None
    folder = models_dir(home) / model_id
    try:
        return _read_checked(folder, model_id)
    except ConfigError:
        return None


def _trained_at(doc: Mapping[str, Any]) -> Any:
    return doc.get("trained_at") or doc.get("created_at")


def _unknown(home: Path, ref: str) -> str:
    root = models_dir(home)
    known = [s["id"] for s in list_models(home) if "error" not in s]
    if not known:
        return f"model {ref}: unknown; no model is saved under {root}. Train one first (`labkit train`)"
    shown = ", ".join(known[:_SHOWN_IDS]) + (
        f" and {len(known) - _SHOWN_IDS} more" if len(known) > _SHOWN_IDS else ""
    )
    return f"model {ref}: unknown under {root}; known (newest first): {shown}"


def _folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


# -- helpers -----------------------------------------------------------------------------------


def _digest(doc: Mapping[str, Any]) -> str:
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _plain(value: Any, where: str) -> Any:
    # JSON's own types only, so model.json reads back to exactly what was hashed.
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), where)
    if isinstance(value, np.generic):
        return _plain(value.item(), where)
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else None  # JSON has no NaN: "no value"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise ConfigError(f"save_model: {where} is a {type(value).__name__}, which model.json cannot hold")


def _version(distributions: tuple[str, ...], module: str) -> str:
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    try:
        return str(importlib.import_module(module).__version__)
    except (ImportError, AttributeError):
        return "unknown"


def _major_minor(version: str) -> tuple[int, int] | None:
    match = re.match(r"([0-9]+)\.([0-9]+)", version)
    return (int(match[1]), int(match[2])) if match else None


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _epoch_ms(text: Any) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return (parsed - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _instant(text: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(text))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _auc_mean(doc: Mapping[str, Any]) -> float | None:
    for value in (doc.get("auc_mean"), (doc.get("metrics") or {}).get("auc_mean")):
        if isinstance(value, int | float):
            return float(value)
    found = [f.get("auc") for f in doc.get("folds") or [] if isinstance(f, Mapping)]
    aucs = [float(a) for a in found if isinstance(a, int | float)]
    return float(np.mean(aucs)) if aucs else None


def _float_or_nan(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("nan")
