"""scikit-learn objects on disk through skops: never pickle, only the types a member uses.

A pickle runs whatever code its file names when it is loaded, so a model folder someone else
handed you could own your machine. skops stores an object as JSON plus ``.npy`` arrays and
rebuilds only types it is told to trust. labkit goes further than skops' own defaults: it lists
every type a file names (not only those skops would query) and refuses the file when one of them
is not among the few its members use.

skops names the arrays inside its zip by memory address and stamps each entry with the time, so
the same model gives other bytes each time. `dumps` renames them in order of appearance and fixes
the stamps: the same model always gives the same bytes, hence the same model id.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

from labkit.errors import ConfigError

# The containers and scalars every skops file is made of.
_COMMON = frozenset(
    {
        "builtins.bool",
        "builtins.dict",
        "builtins.float",
        "builtins.int",
        "builtins.list",
        "builtins.NoneType",
        "builtins.str",
        "builtins.tuple",
        "numpy.float64",
        "numpy.int64",
        "numpy.ndarray",
        "numpy.uint64",
    }
)
ALLOWED_TYPES: dict[str, frozenset[str]] = {
    "logistic": _COMMON
    | {
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.StandardScaler",
    },
    "forest": _COMMON
    | {
        "numpy.random._generator.Generator",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.preprocessing._label.LabelEncoder",
    },
    "bagged": _COMMON
    | {
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._tree.Tree",
    },
}
# How skops rebuilds each node; functions, methods and raw bytes are not among them.
_ALLOWED_LOADERS = frozenset(
    {
        "DictNode",
        "JsonNode",
        "ListNode",
        "LossNode",
        "NdArrayNode",
        "ObjectNode",
        "RandomGeneratorNode",
        "TreeNode",
        "TupleNode",
        "TypeNode",
    }
)
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def dumps(obj: Any) -> bytes:
    """Return `obj` in skops format, the same bytes for the same object in any process."""
    import skops.io

    raw = skops.io.dumps(obj)
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        schema = json.loads(zf.read("schema.json"))
        blobs = {name: zf.read(name) for name in zf.namelist() if name != "schema.json"}
    ids: dict[Any, int] = {}
    names: dict[str, str] = {}

    def rename(node: Any) -> None:
        if isinstance(node, dict):
            if "__id__" in node:  # an object's identity within the file: only equality matters
                node["__id__"] = ids.setdefault(node["__id__"], len(ids))
            file = node.get("file")
            if isinstance(file, str) and file in blobs:
                names.setdefault(file, f"{len(names)}{PurePosixPath(file).suffix}")
                node["file"] = names[file]
            for child in node.values():
                rename(child)
        elif isinstance(node, list):
            for child in node:
                rename(child)

    rename(schema)
    if set(names) != set(blobs):
        return raw  # a layout this code does not know: keep skops' own bytes (ids then vary)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        entries = [("schema.json", json.dumps(schema, indent=2).encode("utf-8"))]
        entries += [(names[old], blobs[old]) for old in names]
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o600 << 16
            zf.writestr(info, data)
    return out.getvalue()


def named_types(data: bytes) -> tuple[set[str], set[str]]:
    """Return every type (``module.Class``) and every loader a skops file names."""
    types: set[str] = set()
    loaders: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "__module__" in node or "__class__" in node:
                types.add(f"{node.get('__module__')}.{node.get('__class__')}")
            if "__loader__" in node:
                loaders.add(str(node["__loader__"]))
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        walk(json.loads(zf.read("schema.json")))
    return types, loaders


def loads(data: bytes, kind: str, where: str) -> Any:
    """Rebuild a member's object from skops bytes, refusing any type outside the kind's allowlist.

    Raises
    ------
    ConfigError
        Naming the file (`where`) and the type it was refused for, or saying it is not a skops file.
    """
    import skops.io

    allowed = ALLOWED_TYPES[kind]
    try:
        types, loaders = named_types(data)
        types |= set(skops.io.get_untrusted_types(data=data))
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: not a readable skops file ({exc}); train the model again") from None
    _refuse(where, sorted(types - allowed), "type", kind)
    _refuse(where, sorted(loaders - _ALLOWED_LOADERS), "skops loader", kind)
    return skops.io.loads(data, trusted=sorted(allowed))


def _refuse(where: str, found: Iterable[str], what: str, kind: str) -> None:
    found = list(found)
    if found:
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise ConfigError(
            f"{where}: holds the {what} {shown}, which a {kind} member never uses; labkit does not "
            "load it (it could run code). Delete this model folder and train again"
        )
