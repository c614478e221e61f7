"""Research runs: backtests, model training, the trial ledger and sweeps."""
