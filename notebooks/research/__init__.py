"""The research notebooks (explore, train_model), shipped inside labkit as ``labkit.notebooks.research``."""
