# The README's commands. Everything runs in .venv, made from pyproject.toml on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
# The demo's trials go to a ledger of its own in the home, which clean-demo removes: its deflated
# Sharpe ratios count only its own variants, the same on every run, and the user's ledger (shared
# by every home, ~/.local/share/labkit/trials.jsonl) is neither read nor touched by it.
DEMO_TRIALS := data/demo-trials.jsonl
LABKIT := LABKIT_TRIALS='$(CURDIR)/$(DEMO_TRIALS)' $(BIN)/labkit --home '$(CURDIR)'
# The same, with the demo book's portfolio limits (at most 3 symbols held, correlated entries sized down).
LABKIT_BOOK := LABKIT_TRIALS='$(CURDIR)/$(DEMO_TRIALS)' LABKIT_PORTFOLIO__MAX_OPEN_POSITIONS=3 \
	LABKIT_PORTFOLIO__MAX_CORRELATION=0.7 $(BIN)/labkit --home '$(CURDIR)'
DEMO := --session demo --mode paper --source synthetic --symbol BTC/USDT --timeframe 1m
# What the demo's `labkit train --json` printed, and the model id in it (read when a line runs).
DEMO_TRAINED := data/backtests/demo-train.json
# The demo's universe: one book, shared cash.
DEMO_BOOK := BTC/USDT,ETH/USDT,SOL/USDT,XRP/USDT,ADA/USDT
DEMO_MODEL = $$($(BIN)/python -c 'import json, sys; print(json.load(open(sys.argv[1]))["model_id"])' $(DEMO_TRAINED))
# The meta-label model the demo trains over sma_cross 10/30 on the same 16 days, and its id.
DEMO_META := data/backtests/demo-meta-train.json
DEMO_META_MODEL = $$($(BIN)/python -c 'import json, sys; print(json.load(open(sys.argv[1]))["model_id"])' $(DEMO_META))

.PHONY: install demo clean-demo test test-heavy lint lab bench

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "labkit needs Python 3.11+; found " + sys.version.split()[0] + " (set PYTHON=python3.11)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# A paper session over 5 days of synthetic 1-minute bars, then its session, daily and weekly reports;
# beside it, two sma_cross backtests of the same days (recorded as trials, which the weekly verdict's
# deflated Sharpe ratio counts), a model trained on the 16 days before them (purged walk-forward
# folds, 3 seeds; its window ends 15 minutes early, so the labels' 15-bar look-ahead stays out of
# them) and backtested by the id train printed on the same 5 days, all out of sample; a meta-label model
# over sma_cross 10/30 trained on the same 16 days (which of its entries reach their profit barrier
# first) and sma_cross backtested behind its meta gate; a sweep of 18 sma_cross variants
# (examples/sma-grid.yaml), a book of five correlated symbols with portfolio limits, and the reports of
# the baseline's, the model's, the meta-gated and the book's backtests, of both trainings (the meta
# model's sets the primary alone against it, out of sample) and of the sweep (with its probability of
# backtest overfitting). It starts from nothing each time,
# so reports/index.html lists only this run's reports.
demo: $(STAMP) clean-demo
	$(LABKIT) run $(DEMO) --pace fast --since 2026-01-05 --until 2026-01-10 --capital 10000
	$(LABKIT) backtest --since 2026-01-05 --until 2026-01-10 --journal data/backtests/demo-sma-10-30.jsonl
	$(LABKIT) backtest --since 2026-01-05 --until 2026-01-10 --fast 60 --slow 240
	@mkdir -p $(dir $(DEMO_TRAINED))
	$(LABKIT) train --since 2025-12-20 --until 2026-01-04T23:45 --horizon 15 --folds 4 --seeds 3 --json > $(DEMO_TRAINED)
	@$(BIN)/python -c 'import json, sys; t = json.load(open(sys.argv[1])); print("trained model %s: out-of-sample AUC %.3f over %d folds" % (t["model_id"], t["auc_mean"], len(t["folds"])))' $(DEMO_TRAINED)
	$(LABKIT) backtest --since 2026-01-05 --until 2026-01-10 --strategy model --model $(DEMO_MODEL) --journal data/backtests/demo-model.jsonl
	$(LABKIT) train --meta sma_cross --since 2025-12-20 --until 2026-01-04T23:45 --horizon 15 --json > $(DEMO_META)
	@$(BIN)/python -c 'import json, sys; t = json.load(open(sys.argv[1])); o = t["oos"]; print("meta model %s over sma_cross 10/30: out-of-sample AUC %.3f; entries %d -> %d, return %.2f%% -> %.2f%%" % (t["model_id"], t["auc_mean"], o["primary"]["trades"], o["meta"]["trades"], o["primary"]["return_pct"], o["meta"]["return_pct"]))' $(DEMO_META)
	$(LABKIT) backtest --since 2026-01-05 --until 2026-01-10 --meta $(DEMO_META_MODEL) --journal data/backtests/demo-meta.jsonl
	$(LABKIT) sweep --grid examples/sma-grid.yaml --yes
	$(LABKIT_BOOK) backtest --symbols $(DEMO_BOOK) \
		--since 2026-01-05 --until 2026-01-10 --fast 60 --slow 240 --journal data/backtests/demo-book.jsonl
	$(LABKIT) report session --session demo
	$(LABKIT) report daily --session demo --date 2026-01-09
	$(LABKIT) report weekly --session demo --week 2026-W02
	$(LABKIT) report backtest --journal data/backtests/demo-sma-10-30.jsonl --title "demo: sma_cross 10/30"
	$(LABKIT) report backtest --journal data/backtests/demo-model.jsonl --title "demo: the trained ensemble on the same days as sma_cross"
	$(LABKIT) report train --model $(DEMO_MODEL)
	$(LABKIT) report train --model $(DEMO_META_MODEL)
	$(LABKIT) report backtest --journal data/backtests/demo-meta.jsonl --title "demo: sma_cross 10/30 behind its meta-label gate"
	$(LABKIT) report sweep --sweep demo-sma
	$(LABKIT) report backtest --journal data/backtests/demo-book.jsonl --title "demo: one book of five symbols, sma_cross 60/240 on each"
	@echo
	@echo "Reports: $(CURDIR)/reports/index.html"

# Remove the demo session, its trials and its reports, and list what is left in reports/index.html.
clean-demo: $(STAMP)
	@# The model the last demo trained, and its report: its id changes with labkit's code, and an old
	@# one would stay listed beside the new one.
	@if [ -f $(DEMO_TRAINED) ]; then rm -rf reports/_models/train-$(DEMO_MODEL).* data/models/$(DEMO_MODEL); fi
	@if [ -f $(DEMO_META) ]; then rm -rf reports/_models/train-$(DEMO_META_MODEL).* data/models/$(DEMO_META_MODEL); fi
	rm -rf data/sessions/demo reports/demo data/backtests/demo-sma-10-30.jsonl* data/backtests/demo-model.jsonl* data/backtests/demo-book.jsonl* data/backtests/demo-meta.jsonl* $(DEMO_TRAINED) $(DEMO_META) \
		reports/_backtests/backtest-demo-* data/sweeps/demo-sma reports/_sweeps/sweep-demo-sma.* $(DEMO_TRIALS)
	$(BIN)/python -c 'import sys; from labkit.reports.render import write_index; write_index(sys.argv[1])' '$(CURDIR)'

test: $(STAMP) lint
	$(BIN)/python -m pytest

# The heaviest end-to-end tests, left out of `make test` to keep it under two minutes; CI runs both.
# Among them the live page's browser test, which needs Chromium, its driver and selenium; without
# them it is skipped, said here and in pytest's summary of skips.
test-heavy: $(STAMP)
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || echo "Chromium not installed: the browser test of the live page (tests/serve/test_browser.py) is skipped; apt-get install chromium chromium-driver"
	@$(BIN)/python -c 'import selenium' 2>/dev/null || echo "selenium not installed: the browser test of the live page (tests/serve/test_browser.py) is skipped"
	$(BIN)/python -m pytest -m heavy

lint: $(STAMP)
	$(BIN)/ruff check labkit tests benchmarks
	$(BIN)/mypy labkit
	$(BIN)/lint-imports --no-cache

lab: $(STAMP)
	$(BIN)/python -c 'import jupyterlab' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[lab]'
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

bench: $(STAMP)
	$(BIN)/python benchmarks/replay.py
	$(BIN)/python -c 'import backtesting, vectorbt' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/vs_backtesting.py
	$(BIN)/python benchmarks/portfolio.py
