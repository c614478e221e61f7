"""Reports: notebooks rendered to HTML (`render`) in kernels started ahead of them (`kernels`), the
index of them (`index`), the tables of each report kind (`sessions`, `daily`, `weekly`, `backtests`,
`research`, `sweeps`; `journals` and `tables` shared by them) and the figures they show (`figures`)."""
