"""The one side vocabulary: names in the journal and the gates, codes in the engine's arrays.

A module of its own, importing nothing, so readers of journals (readiness, reports, analysis) get
the names without loading the strategy machinery (pydantic, the plug-in scan).
"""

BUY, SELL, HOLD = "BUY", "SELL", "HOLD"
BUY_CODE, HOLD_CODE, SELL_CODE = 1, 0, -1
SIDE_NAME = {BUY_CODE: BUY, HOLD_CODE: HOLD, SELL_CODE: SELL}
SIDE_CODE = {BUY: BUY_CODE, HOLD: HOLD_CODE, SELL: SELL_CODE}
