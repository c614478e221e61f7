"""The report notebooks, shipped inside labkit as ``labkit.notebooks`` (see pyproject.toml)."""
