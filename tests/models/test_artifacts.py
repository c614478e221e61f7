from __future__ import annotations

import collections
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from labkit.errors import ConfigError
from labkit.models import artifacts
from labkit.models.artifacts import (
    in_sample_span,
    list_models,
    load_model,
    model_trained_at,
    models_dir,
    save_model,
)
from labkit.models.ensemble import Calibrator, Ensemble
from labkit.timeutil import parse_instant
from tests.models.conftest import FEATURES, META, SCHEMA


def _doc(home: Path, model_id: str) -> dict:
    return json.loads((models_dir(home) / model_id / "model.json").read_text())


def _rehash(home: Path, model_id: str, edit=None) -> str:
    # What an attacker who knows the format would do: fix the digests and the id after a change.
    folder = models_dir(home) / model_id
    doc = _doc(home, model_id)
    if edit is not None:
        edit(doc)
    for entry in doc["members"]:
        for file in entry["files"]:
            path = folder / file["path"]
            if path.is_file():
                file["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    content = {k: v for k, v in doc.items() if k not in artifacts._UNHASHED}
    new_id = f"{doc['kind']}-{artifacts._digest(content)[:12]}"
    doc["model_id"] = new_id
    (folder / "model.json").write_text(json.dumps(doc))
    folder.rename(folder.parent / new_id)
    return new_id


def _other_ensemble(ensemble: Ensemble) -> Ensemble:
    # The same members with other weights: another model (another id).
    return Ensemble(ensemble.members, [0.2, 0.3, 0.5], ensemble.calibrator, SCHEMA, ensemble.losses)


def test_save_model_when_loaded_back_predicts_identically(saved, ensemble):
    # Arrange
    home, model_id = saved
    X = np.random.default_rng(0).normal(size=(500, FEATURES))
    # Act
    loaded = load_model(home, model_id)
    # Assert
    assert loaded.model_id == model_id and loaded.schema == SCHEMA
    np.testing.assert_array_equal(loaded.ensemble.predict_proba(X), ensemble.predict_proba(X))
    np.testing.assert_array_equal(loaded.ensemble.weights, ensemble.weights)
    assert loaded.ensemble.predict_one(X[0]) == ensemble.predict_one(X[0])
    assert loaded.ensemble.calibrator == ensemble.calibrator


def test_save_model_when_saved_twice_gives_the_same_id_and_one_folder(copy_of_saved, ensemble):
    # Arrange
    home, model_id = copy_of_saved
    before = _doc(home, model_id)
    # Act
    again = save_model(home, ensemble, META)
    # Assert: only the time of the last training moved
    assert again == model_id
    assert sorted(p.name for p in models_dir(home).iterdir()) == [model_id]
    after = _doc(home, model_id)
    assert after["trained_at"] > before["trained_at"] == before["created_at"] == after["created_at"]
    assert {**after, "trained_at": None} == {**before, "trained_at": None}
    load_model(home, model_id)  # still hashes to its id


def test_save_model_when_content_differs_gives_another_id(saved, ensemble, tmp_path):
    # Act
    other = save_model(tmp_path, _other_ensemble(ensemble), META)
    # Assert
    assert other != saved[1] and other.startswith("ens-") and len(other) == 16


def test_save_model_when_done_writes_only_ubj_skops_and_json_private_files(saved):
    # Arrange
    home, model_id = saved
    folder = models_dir(home) / model_id
    # Act
    files = [p for p in folder.rglob("*") if p.is_file()]
    # Assert
    assert {p.suffix for p in files} == {".ubj", ".skops", ".json"}
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in files)
    assert all(p.stat().st_mode & 0o777 == 0o700 for p in [folder, *folder.iterdir()] if p.is_dir())


def test_save_model_when_done_records_what_the_model_is(saved, ensemble):
    # Arrange
    home, model_id = saved
    # Act
    doc = _doc(home, model_id)
    # Assert
    assert doc["model_id"] == model_id and doc["created_at"].endswith("Z")
    assert {
        k: doc[k]
        for k in ("symbol", "timeframe", "source", "window", "data_hash", "horizon", "params", "folds")
    } == {
        k: META[k]
        for k in ("symbol", "timeframe", "source", "window", "data_hash", "horizon", "params", "folds")
    }
    assert doc["features"] == SCHEMA
    assert [m["kind"] for m in doc["members"]] == ["xgboost", "logistic", "forest"]
    assert [m["weight"] for m in doc["members"]] == ensemble.weights.tolist()
    assert [m["oof_log_loss"] for m in doc["members"]] == ensemble.losses
    assert doc["members"][0]["files"][0]["path"] == "0-xgboost/xgboost.ubj"
    assert doc["members"][2]["schema"] == SCHEMA and doc["members"][1]["params"]["C"] == 1.0
    assert doc["calibrator"] == ensemble.calibrator.to_json()
    assert {"python", "numpy", "scikit-learn", "xgboost", "skops", "labkit", "git_sha"} <= set(
        doc["versions"]
    )


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({**META, "symbol": ""}, "meta.symbol is required"),
        ({k: v for k, v in META.items() if k != "timeframe"}, "meta.timeframe is required"),
        ({**META, "members": []}, "may not set members"),
        ({**META, "kind": "Ens-1"}, "lowercase letters"),
        ({**META, "features": {"names": ["x"]}}, "differs from the ensemble's schema"),
        ({**META, "extra": object()}, "meta.extra is a object"),
    ],
)
def test_save_model_when_meta_is_wrong_refuses(ensemble, tmp_path, meta, message):
    with pytest.raises(ConfigError, match=message):
        save_model(tmp_path, ensemble, meta)
    assert not list(models_dir(tmp_path).glob("ens-*"))


def test_save_model_when_interrupted_before_the_rename_leaves_no_model(ensemble, tmp_path, monkeypatch):
    # Arrange
    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(artifacts, "write_json_atomic", crash)
    # Act
    with pytest.raises(KeyboardInterrupt):
        save_model(tmp_path, ensemble, META)
    # Assert
    assert list(models_dir(tmp_path).iterdir()) == []


def test_save_model_when_a_dead_process_left_a_staging_folder_removes_it(ensemble, tmp_path):
    # Arrange
    stale = models_dir(tmp_path) / ".new-999999999-abcd"
    stale.mkdir(parents=True)
    (stale / "model.json").write_text("{}")
    # Act
    save_model(tmp_path, _other_ensemble(ensemble), META)
    # Assert
    assert not stale.exists()


def test_save_model_when_the_folder_of_its_id_is_damaged_replaces_it(copy_of_saved, ensemble):
    # Arrange
    home, model_id = copy_of_saved
    (models_dir(home) / model_id / "1-logistic" / "logistic.skops").unlink()
    # Act
    again = save_model(home, ensemble, META)
    # Assert
    assert again == model_id
    load_model(home, model_id)
    assert len(list(models_dir(home).glob(f".broken-{model_id}-*"))) == 1


def test_load_model_when_a_member_file_has_one_byte_changed_says_tampered(copy_of_saved):
    # Arrange
    home, model_id = copy_of_saved
    path = models_dir(home) / model_id / "0-xgboost" / "xgboost.ubj"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    # Act
    with pytest.raises(ConfigError) as caught:
        load_model(home, model_id)
    # Assert
    assert "0-xgboost/xgboost.ubj: tampered" in str(caught.value)


def test_load_model_when_model_json_was_edited_says_it_no_longer_hashes_to_its_id(copy_of_saved):
    # Arrange
    home, model_id = copy_of_saved
    path = models_dir(home) / model_id / "model.json"
    path.write_text(path.read_text().replace('"horizon": 4', '"horizon": 8'))
    # Act
    with pytest.raises(ConfigError) as caught:
        load_model(home, model_id)
    # Assert
    assert f"no longer hashes to its id {model_id}" in str(caught.value)


def test_load_model_when_a_member_file_was_deleted_names_it(copy_of_saved):
    # Arrange
    home, model_id = copy_of_saved
    (models_dir(home) / model_id / "2-forest" / "forest.skops").unlink()
    # Act
    with pytest.raises(ConfigError) as caught:
        load_model(home, model_id)
    # Assert
    assert "2-forest/forest.skops: missing" in str(caught.value)


def test_load_model_when_model_json_was_deleted_says_the_folder_is_incomplete(copy_of_saved):
    # Arrange
    home, model_id = copy_of_saved
    (models_dir(home) / model_id / "model.json").unlink()
    # Act / Assert
    with pytest.raises(ConfigError, match="model.json: missing"):
        load_model(home, model_id)


@pytest.mark.parametrize(
    "ref", ["../etc", "ens-../../etc", "ens-3F9A1C2B7D4E", "ens-3f9a1c2b7d4e/..", "", "ens-3f9a1c2b7d4"]
)
def test_load_model_when_ref_is_not_an_id_refuses_before_touching_the_disk(saved, ref):
    # Act
    with pytest.raises(ConfigError) as caught:
        load_model(saved[0], ref)
    # Assert
    assert f"model {ref!r}: not a model id" in str(caught.value)


def test_load_model_when_id_is_unknown_lists_the_known_ones(saved):
    # Arrange
    home, model_id = saved
    # Act
    with pytest.raises(ConfigError) as caught:
        load_model(home, "ens-000000000000")
    # Assert
    assert "ens-000000000000: unknown" in str(caught.value) and model_id in str(caught.value)


def test_load_model_when_no_model_is_saved_says_so(tmp_path):
    with pytest.raises(ConfigError, match="no model is saved under"):
        load_model(tmp_path, "ens-000000000000")


def test_load_model_when_latest_has_no_model_for_the_market_suggests_training(saved):
    # Act
    with pytest.raises(ConfigError) as caught:
        load_model(saved[0], "latest", "ETH/USDT", "1h")
    # Assert
    assert "no model for ETH/USDT 1h" in str(caught.value) and "labkit train" in str(caught.value)


def test_load_model_when_latest_picks_the_newest_of_that_symbol_and_timeframe(copy_of_saved, ensemble):
    # Arrange
    home, first = copy_of_saved
    newer = save_model(home, _other_ensemble(ensemble), META)
    other_market = save_model(home, ensemble, {**META, "symbol": "ETH/USDT"})
    # Act
    result = load_model(home, "latest", "BTC/USDT", "1h")
    # Assert
    assert result.model_id == newer != first
    assert load_model(home, "latest", "ETH/USDT", "1h").model_id == other_market


def test_load_model_when_the_id_is_of_another_market_refuses(saved):
    # Act
    with pytest.raises(ConfigError) as caught:
        load_model(saved[0], saved[1], "BTC/USDT", "5m")
    # Assert
    assert "trained on BTC/USDT 1h, not BTC/USDT 5m" in str(caught.value)


@pytest.mark.parametrize(
    ("library", "saved_as", "message"),
    [
        (
            "scikit-learn",
            "1.8.2",
            "scikit-learn objects saved by skops are not portable across minor versions",
        ),
        ("scikit-learn", "0.24.2", "major versions of scikit-learn"),
        ("xgboost", "2.1.4", "major versions of xgboost"),
        ("numpy", "1.26.4", "major versions of numpy"),
    ],
)
def test_load_model_when_saved_with_another_library_version_refuses(
    ensemble, tmp_path, monkeypatch, library, saved_as, message
):
    # Arrange
    current = artifacts.library_versions()
    monkeypatch.setattr(artifacts, "library_versions", lambda: {**current, library: saved_as})
    model_id = save_model(tmp_path, ensemble, META)
    monkeypatch.undo()
    # Act
    with pytest.raises(ConfigError) as caught:
        load_model(tmp_path, model_id)
    # Assert
    assert f"saved with {library} {saved_as}, this is {current[library]}" in str(caught.value)
    assert message in str(caught.value)


def test_load_model_when_only_an_unused_library_changed_loads(members, tmp_path, monkeypatch):
    # A model without an XGBoost member does not care which XGBoost runs.
    ensemble = Ensemble([members["logistic"]], [1.0], Calibrator.identity(), SCHEMA)
    current = artifacts.library_versions()
    monkeypatch.setattr(artifacts, "library_versions", lambda: {**current, "xgboost": "9.0.0"})
    model_id = save_model(tmp_path, ensemble, META)
    monkeypatch.undo()
    # Act
    loaded = load_model(tmp_path, model_id)
    # Assert
    assert [m.kind for m in loaded.ensemble.members] == ["logistic"]


@pytest.mark.parametrize(
    ("payload", "named"), [("ordered_dict", "collections.OrderedDict"), ("svc", "sklearn.svm._classes.SVC")]
)
def test_load_model_when_a_member_file_holds_an_unexpected_type_refuses(copy_of_saved, payload, named):
    # Arrange: the file replaced and model.json re-hashed, so only the type check stands in the way
    import skops.io

    home, model_id = copy_of_saved
    if payload == "svc":
        from sklearn.svm import SVC

        rng = np.random.default_rng(0)
        obj = SVC().fit(rng.normal(size=(50, FEATURES)), np.arange(50) % 2)
    else:
        obj = collections.OrderedDict(a=1)
    (models_dir(home) / model_id / "2-forest" / "forest.skops").write_bytes(skops.io.dumps(obj))
    new_id = _rehash(home, model_id)
    # Act
    with pytest.raises(ConfigError) as caught:
        load_model(home, new_id)
    # Assert
    assert "2-forest/forest.skops" in str(caught.value) and named in str(caught.value)


def test_load_model_when_model_json_points_outside_the_folder_refuses(copy_of_saved):
    # Arrange
    home, model_id = copy_of_saved

    def escape(doc):
        doc["members"][0]["files"][0]["path"] = "../../../etc/xgboost.ubj"

    new_id = _rehash(home, model_id, escape)
    # Act
    with pytest.raises(ConfigError) as caught:
        load_model(home, new_id)
    # Assert
    assert "'../../../etc/xgboost.ubj' is not a member file name" in str(caught.value)


def test_list_models_when_one_is_broken_lists_it_last_with_its_error(copy_of_saved, ensemble):
    # Arrange
    home, first = copy_of_saved
    newer = save_model(home, _other_ensemble(ensemble), META)
    broken = models_dir(home) / "ens-0123456789ab"
    broken.mkdir()
    (broken / "model.json").write_text("{not json")
    # Act
    result = list_models(home)
    # Assert
    assert [s["id"] for s in result] == [newer, first, "ens-0123456789ab"]
    assert result[0] == {
        "id": newer,
        "symbol": "BTC/USDT",
        "symbols": None,  # one symbol's model: not pooled over a universe
        "timeframe": "1h",
        "created_at": _doc(home, newer)["created_at"],
        "trained_at": _doc(home, newer)["created_at"],
        "features": 5,
        "window": META["window"],
        "auc_mean": pytest.approx(0.62),
        "members": ["xgboost", "logistic", "forest"],
    }
    assert "not readable JSON" in result[2]["error"]


def test_list_models_when_no_home_returns_nothing(tmp_path):
    assert list_models(tmp_path / "nowhere") == []


def test_models_package_when_imported_loads_no_pandas_nor_model_libraries():
    # `labkit` and its CLI stay quick: the libraries load when a model is fitted or loaded.
    import subprocess
    import sys

    code = (
        "import sys, labkit.models.artifacts, labkit.models.ensemble, labkit.models.members\n"
        "print(sorted(m for m in ('pandas', 'sklearn', 'xgboost', 'skops', 'scipy') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_copy_of_saved_when_used_leaves_the_shared_home_alone(saved):
    # The damaging tests work on copies: the shared saved model still loads.
    assert load_model(*saved).model_id == saved[1]


def test_in_sample_span_when_saved_is_the_window_plus_the_label_horizon(saved):
    # Arrange: META's window ends with the bar opened 2026-03-25 08:00 (1h bars, horizon 4)
    home, model_id = saved
    since = parse_instant("2026-01-01T00:00:00Z")
    last_open = parse_instant("2026-03-25T08:00:00Z")
    # Act
    span = in_sample_span(home, model_id)
    # Assert: the last training bar's hour, then 4 more hours of labels reaching into the future
    assert span == (since, last_open + (1 + 4) * 3_600_000)


def test_in_sample_span_when_the_model_or_its_window_is_unknown_is_none(copy_of_saved, ensemble):
    # Arrange
    home, _ = copy_of_saved
    no_window = save_model(home, ensemble, {k: v for k, v in META.items() if k != "window"})
    no_horizon = save_model(home, _other_ensemble(ensemble), {**META, "horizon": None})
    # Act / Assert
    assert in_sample_span(home, "ens-000000000000") is None
    assert in_sample_span(home, "not an id") is None
    assert in_sample_span(home, no_window) is None
    assert in_sample_span(home, no_horizon) is None


def test_load_model_when_latest_and_an_older_model_is_retrained_picks_the_retrained_one(
    copy_of_saved, ensemble, monkeypatch
):
    # Arrange: the first model, then another, then the first trained again with identical content
    home, first = copy_of_saved
    clock = iter(["2030-01-01T00:00:00.000000Z", "2030-01-02T00:00:00.000000Z"])
    monkeypatch.setattr(artifacts, "_now_text", lambda: next(clock))
    newer = save_model(home, _other_ensemble(ensemble), META)
    assert load_model(home, "latest", "BTC/USDT", "1h").model_id == newer
    # Act
    again = save_model(home, ensemble, META)
    # Assert: the same id (a content hash), still intact, and now the latest
    assert again == first
    assert load_model(home, "latest", "BTC/USDT", "1h").model_id == first
    assert model_trained_at(home, first) == "2030-01-02T00:00:00.000000Z"
    assert [m["id"] for m in list_models(home)][:2] == [first, newer]
    assert _doc(home, first)["created_at"] < _doc(home, first)["trained_at"]


def _full_disk(handle):
    import errno

    handle.write(b"PAR1 half a file")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_save_model_when_a_file_beside_the_members_fills_the_disk_installs_nothing(ensemble, tmp_path):
    # Act: the last file of the model cannot be written
    with pytest.raises(OSError, match="No space left on device") as caught:
        save_model(tmp_path, _other_ensemble(ensemble), META, files={"out_of_sample.parquet": _full_disk})
    # Assert: the error names the model's file; no folder, listed or hidden, is left
    assert str(caught.value.filename).endswith("out_of_sample.parquet")
    assert ".new-" not in str(caught.value.filename)
    assert list_models(tmp_path) == []
    assert list(models_dir(tmp_path).iterdir()) == []


def test_save_model_when_given_files_installs_them_with_the_model_privately(ensemble, tmp_path):
    # Act
    model_id = save_model(
        tmp_path, _other_ensemble(ensemble), META, files={"out_of_sample.parquet": b"PAR1 whole"}
    )
    # Assert
    written = models_dir(tmp_path) / model_id / "out_of_sample.parquet"
    assert written.read_bytes() == b"PAR1 whole" and written.stat().st_mode & 0o777 == 0o600
    load_model(tmp_path, model_id)  # a file beside the members is no part of the id


def test_save_model_when_a_file_was_missing_from_the_same_model_saved_before_adds_it(copy_of_saved, ensemble):
    # Arrange: the same model, saved before its out-of-sample file existed
    home, model_id = copy_of_saved
    # Act
    again = save_model(home, ensemble, META, files={"out_of_sample.parquet": b"PAR1 whole"})
    # Assert
    assert again == model_id
    assert (models_dir(home) / model_id / "out_of_sample.parquet").read_bytes() == b"PAR1 whole"


@pytest.mark.parametrize("name", ["model.json", "../escape.parquet", "0-xgboost", ".hidden", "a/b.parquet"])
def test_save_model_when_a_file_name_is_not_a_plain_new_name_refuses(ensemble, tmp_path, name):
    # Act
    with pytest.raises(ConfigError, match="save_model: files"):
        save_model(tmp_path, _other_ensemble(ensemble), META, files={name: b"x"})
    # Assert
    assert not (tmp_path / "escape.parquet").exists()
    assert list_models(tmp_path) == []


@pytest.mark.parametrize("stop", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_save_model_when_the_step_after_installing_fails_withdraws_the_new_model(ensemble, tmp_path, stop):
    # Arrange: what train records once the model is in place (its trial) fails or is killed
    def record(model_id: str) -> None:
        assert (models_dir(tmp_path) / model_id / "model.json").is_file()
        raise stop

    # Act
    with pytest.raises(type(stop)):
        save_model(tmp_path, _other_ensemble(ensemble), META, on_installed=record)
    # Assert
    assert list_models(tmp_path) == []
    assert list(models_dir(tmp_path).iterdir()) == []


def test_save_model_when_the_step_after_fails_for_a_model_saved_before_keeps_it(copy_of_saved, ensemble):
    # Arrange: the same model was trained and recorded before; this retrain's trial fails
    home, model_id = copy_of_saved

    def record(model_id: str) -> None:
        raise OSError(28, "No space left on device")

    # Act
    with pytest.raises(OSError):
        save_model(home, ensemble, META, on_installed=record)
    # Assert
    load_model(home, model_id)
