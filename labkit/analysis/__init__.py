"""Statistics any room may use: metrics, market calendars, round trips, calendar periods, the
probability of backtest overfitting, execution models and number formatting."""
