from __future__ import annotations

from tests.test_layout import DOWNSTREAM, import_graph


def test_features_when_imported_reach_only_data_bars_and_timeutil_in_labkit():
    # Arrange
    graph = import_graph()
    # Act
    reached = {
        target
        for module, targets in graph.items()
        if module.startswith("labkit.features")
        for target in targets
        if not target.startswith("labkit.features")
    }
    # Assert
    assert not any(target.startswith(DOWNSTREAM) for target in reached)
    assert reached <= {"labkit.data", "labkit.data.bars", "labkit.timeutil"}
