"""The schema of a feature set: what a model was trained on, saved beside it and checked at load.

Two schemas match when they have the same names in the same order, the same lookbacks and the same
`version`. A schema with cross-sectional features (`labkit.features.cross_section`) says so
(``cross_sectional: true``): the model needs a universe to compute them, so it trades only a book.

The version hashes the names, the lookbacks and each feature's definition version, so a
feature whose formula changed (its definition version was bumped) no longer matches a model trained
on the old formula, even under the same name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.features.definitions import Feature


def schema_version(names: Sequence[str], lookbacks: Sequence[int], definitions: Sequence[str]) -> str:
    """Return 12 hex digits of the SHA-256 of the names, lookbacks and definition versions.

    Examples
    --------
    >>> schema_version(["ret_1"], [2], ["1"])
    '44269ba9504d'
    """
    rows = [
        [name, int(lookback), str(definition)]
        for name, lookback, definition in zip(names, lookbacks, definitions, strict=True)
    ]
    payload = json.dumps(rows, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(payload.encode("ascii")).hexdigest()[:12]


@dataclass(frozen=True)
class FeatureSchema:
    """The names, lookbacks and version of a feature set, as a model records it."""

    names: tuple[str, ...]
    lookbacks: tuple[int, ...]
    version: str
    cross_sectional: bool = False

    @classmethod
    def of(cls, features: Sequence[Feature]) -> FeatureSchema:
        """Return the schema of `features`, in their order."""
        names = tuple(f.name for f in features)
        lookbacks = tuple(f.lookback for f in features)
        version = schema_version(names, lookbacks, [f.version for f in features])
        return cls(names, lookbacks, version, any(f.cross_sectional for f in features))

    def to_dict(self) -> dict[str, Any]:
        """Return the schema as plain JSON data (``cross_sectional`` only when true: older schemas match)."""
        out: dict[str, Any] = {
            "names": list(self.names),
            "lookbacks": list(self.lookbacks),
            "version": self.version,
        }
        if self.cross_sectional:
            out["cross_sectional"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSchema:
        """Return the schema `to_dict` wrote; raise ValueError saying what is wrong with `data`."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a feature schema is a mapping with names, lookbacks and version, not {data!r}")
        missing = [key for key in ("names", "lookbacks", "version") if key not in data]
        if missing:
            raise ValueError(f"feature schema: missing key(s) {', '.join(missing)}")
        names, lookbacks, version = data["names"], data["lookbacks"], data["version"]
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"feature schema: names must be a list of strings, not {names!r}")
        if not isinstance(lookbacks, list | tuple) or not all(
            isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in lookbacks
        ):
            raise ValueError(f"feature schema: lookbacks must be positive integers, not {lookbacks!r}")
        if len(names) != len(lookbacks):
            raise ValueError(
                f"feature schema: {len(names)} names but {len(lookbacks)} lookbacks; they go in pairs"
            )
        if not isinstance(version, str):
            raise ValueError(f"feature schema: version must be a string, not {version!r}")
        cross = data.get("cross_sectional", False)
        if not isinstance(cross, bool):
            raise ValueError(f"feature schema: cross_sectional must be true or false, not {cross!r}")
        return cls(tuple(names), tuple(lookbacks), version, cross)

    def differences(self, other: FeatureSchema) -> list[str]:
        """Return sentences naming how `other` differs from this schema (empty when they match).

        This schema is the one expected (a model's); `other` is the one offered (the live features).

        Examples
        --------
        >>> old = FeatureSchema(("ret_1", "vol_15"), (2, 16), "aaaaaaaaaaaa")
        >>> new = FeatureSchema(("ret_1", "vol_15"), (2, 21), "bbbbbbbbbbbb")
        >>> for sentence in new.differences(old):
        ...     print(sentence)
        lookback of vol_15 differs: 21 bars expected, 16 offered
        version differs: bbbbbbbbbbbb expected, aaaaaaaaaaaa offered
        """
        found = []
        offered = set(other.names)
        expected = set(self.names)
        missing = [n for n in self.names if n not in offered]
        extra = [n for n in other.names if n not in expected]
        if missing:
            found.append(f"missing feature(s), expected but not offered: {', '.join(missing)}")
        if extra:
            found.append(f"extra feature(s), offered but not expected: {', '.join(extra)}")
        common_expected = [n for n in self.names if n in offered]
        common_offered = [n for n in other.names if n in expected]
        if common_expected != common_offered:
            pairs = zip(common_expected, common_offered, strict=True)
            at = next(i for i, (a, b) in enumerate(pairs) if a != b)
            found.append(
                f"features in a different order: {common_expected[at]} expected where {common_offered[at]} "
                f"is offered (expected order {', '.join(common_expected)})"
            )
        theirs = dict(zip(other.names, other.lookbacks, strict=True))
        for name, lookback in zip(self.names, self.lookbacks, strict=True):
            if name in theirs and theirs[name] != lookback:
                found.append(f"lookback of {name} differs: {lookback} bars expected, {theirs[name]} offered")
        if self.version != other.version:
            why = "" if found else " (same names and lookbacks: a feature's formula changed)"
            found.append(f"version differs: {self.version} expected, {other.version} offered{why}")
        return found
