from __future__ import annotations

import dataclasses
import json

import pytest

from labkit.features.definitions import FEATURES
from labkit.features.featureset import FeatureSet
from labkit.features.schema import FeatureSchema, schema_version


def test_schema_when_saved_as_json_and_read_back_is_equal():
    # Arrange
    schema = FeatureSet().schema
    # Act
    result = FeatureSchema.from_dict(json.loads(json.dumps(schema.to_dict())))
    # Assert
    assert result == schema
    assert len(schema.version) == 12 and int(schema.version, 16) >= 0


def test_schema_when_same_features_has_the_same_version_and_no_differences():
    assert FeatureSet().schema == FeatureSet(list(FEATURES)).schema
    assert FeatureSet().schema.differences(FeatureSet().schema) == []


def test_schema_when_a_lookback_changes_changes_version_and_names_the_feature():
    # Arrange
    names = ["ret_1", "vol_15"]
    old = FeatureSet(names).schema
    new = FeatureSchema(old.names, (2, 21), schema_version(names, (2, 21), ["1", "1"]))
    # Act
    result = old.differences(new)
    # Assert
    assert new.version != old.version
    assert result[0] == "lookback of vol_15 differs: 16 bars expected, 21 offered"
    assert result[1].startswith(f"version differs: {old.version} expected, {new.version} offered")


def test_schema_when_a_formula_version_is_bumped_differs_only_in_version():
    # Arrange
    features = [FEATURES["ret_1"], dataclasses.replace(FEATURES["rsi_14"], version="2")]
    old = FeatureSet(["ret_1", "rsi_14"]).schema
    # Act
    new = FeatureSchema.of(features)
    # Assert
    assert (new.names, new.lookbacks) == (old.names, old.lookbacks) and new.version != old.version
    assert old.differences(new) == [
        f"version differs: {old.version} expected, {new.version} offered "
        "(same names and lookbacks: a feature's formula changed)"
    ]


def test_schema_when_names_are_missing_extra_or_reordered_says_which():
    # Arrange
    model = FeatureSet(["ret_1", "ret_5", "vol_15", "rsi_14"]).schema
    live = FeatureSet(["ret_5", "ret_1", "rsi_14", "macd"]).schema
    # Act
    result = model.differences(live)
    # Assert
    assert result[0] == "missing feature(s), expected but not offered: vol_15"
    assert result[1] == "extra feature(s), offered but not expected: macd"
    assert result[2].startswith("features in a different order: ret_1 expected where ret_5 is offered")
    assert result[3].startswith("version differs")


def test_schema_when_a_name_changes_changes_version():
    assert FeatureSet(["ret_1"]).schema.version != FeatureSet(["ret_5"]).schema.version


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"names": ["a"], "lookbacks": [1]}, "missing key"),
        ({"names": ["a"], "lookbacks": [1, 2], "version": "x"}, "1 names but 2 lookbacks"),
        ({"names": "a", "lookbacks": [1], "version": "x"}, "list of strings"),
        ({"names": ["a"], "lookbacks": [0], "version": "x"}, "positive integers"),
        ({"names": ["a"], "lookbacks": [1], "version": 3}, "version must be a string"),
        (["a"], "is a mapping"),
    ],
)
def test_schema_from_dict_when_data_is_bad_raises_saying_what(data, message):
    with pytest.raises(ValueError, match=message):
        FeatureSchema.from_dict(data)
