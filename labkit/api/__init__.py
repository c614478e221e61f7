"""The notebook API: load bars, backtest a strategy (a name, a class, or a plain function), look at it.

`labkit.load_bars`, `labkit.backtest` and `labkit.Result` live here and are exported lazily from
the package root; docs/api.md shows each with a runnable example. It sits on top of the layers it
uses (research runs the backtest, data reads the bars, the reports' figures draw), below the CLI.
"""
