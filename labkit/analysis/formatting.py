"""Numbers as reports and the command line show them, and as JSON can hold them.

One place for every way labkit writes a figure, so a Sharpe ratio reads the same on a page, in a
table and in a terminal. Every formatter takes what a summary, a frame or a JSON file may hold
(a float, an int, a numpy scalar, None, NaN) and shows a missing figure as ``n/a`` (`NA`), never
``nan``. Infinities are shown as ``inf``: a ratio without a downside is infinite, not missing.
Negative zero is shown as zero. Nothing here imports pandas, except `duration` when called.

Examples
--------
>>> number(1234.5), percent(12.345), share(0.1234), money(-1271.926, "USDT")
('1,234.50', '12.35%', '12.3%', '-1,271.93 USDT')
>>> number(None), percent(float("nan")), share(float("inf")), ratio(2.5e7)
('n/a', 'n/a', 'inf%', '25,000,000')
"""

from __future__ import annotations

import math
from typing import Any

NA = "n/a"  # what a missing figure (None, NaN, not a number) is shown as


def is_number(value: Any) -> bool:
    """Return True when `value` is an int or a float (numpy's included), and not a bool.

    Examples
    --------
    >>> is_number(3), is_number(2.5), is_number(True), is_number("3")
    (True, True, False, False)
    """
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_float(value: Any, default: float = math.nan) -> float:
    """Return `value` as a float; `default` for None, a bool, or what `float` refuses.

    A string of digits counts (``"1.5"`` is 1.5): tables read back from files hold such.

    Examples
    --------
    >>> as_float(3), as_float("1.5"), as_float(None), as_float(True, 0.0), as_float("abc")
    (3.0, 1.5, nan, 0.0, nan)
    """
    if value is None or isinstance(value, bool):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def finite(value: Any) -> float | None:
    """Return `value` as a float when it is a finite number, else None (what a JSON summary holds).

    Examples
    --------
    >>> finite(2), finite(0.5), finite(float("nan")), finite(float("-inf")), finite(True), finite("1")
    (2.0, 0.5, None, None, None, None)
    """
    if not is_number(value):
        return None
    return float(value) if math.isfinite(value) else None


def _shown(value: Any) -> float | None:
    # The float a formatter shows, or None when the figure is missing; + 0.0 turns -0.0 into 0.0.
    v = as_float(value)
    return None if v != v else v + 0.0


def number(value: Any, digits: int = 2) -> str:
    """Return a number with `digits` decimals and thousands separators.

    Examples
    --------
    >>> number(1234.5678), number(-0.5, 3), number(float("nan")), number(-0.0), number(1e20, 0)
    ('1,234.57', '-0.500', 'n/a', '0.00', '100,000,000,000,000,000,000')
    """
    v = _shown(value)
    return NA if v is None else f"{v:,.{digits}f}"


def percent(value: Any, digits: int = 2) -> str:
    """Return a figure already in percent (``return_pct``) with `digits` decimals and ``%``.

    Examples
    --------
    >>> percent(12.345), percent(-3.0, 1), percent(None)
    ('12.35%', '-3.0%', 'n/a')
    """
    v = _shown(value)
    return NA if v is None else f"{v:.{digits}f}%"


def share(value: Any, digits: int = 1, sign: bool = False) -> str:
    """Return a fraction as a percentage with `digits` decimals; `sign` puts ``+`` before a gain.

    Examples
    --------
    >>> share(0.1234), share(0.5, 0), share(0.00123, 3, sign=True), share(-0.02, 2), share(None)
    ('12.3%', '50%', '+0.123%', '-2.00%', 'n/a')

    A loss too small to show is 0, never "-0.000%":

    >>> share(-1e-9, 3)
    '0.000%'
    """
    v = _shown(value)
    if v is None:
        return NA
    if round(v * 100, digits) == 0:
        v = 0.0  # -0.0000001 rounds to "-0.000%", a sign with nothing behind it
    return f"{v:{'+' if sign else ''}.{digits}%}"


TINY = 1e-6  # a figure smaller than this in magnitude is float noise (5.551e-17) and shows as 0


def significant(value: Any, digits: int = 4) -> str:
    """Return a number with `digits` significant digits, written out in full: never powers of ten.

    A figure below `TINY` in magnitude shows as 0 (the residue of float sums, ``5.551e-17``, is
    not a figure); one of ``10 ** digits`` or more keeps all its integer digits. Thousands are
    separated. Infinities show as ``inf``.

    Examples
    --------
    >>> significant(0.123456), significant(123456.0), significant(5.551e-17), significant(None)
    ('0.1235', '123,456', '0', 'n/a')
    >>> significant(1.4146470451501785, 6), significant(0.0000123456), significant(999.99)
    ('1.41465', '0.00001235', '1,000')
    """
    v = _shown(value)
    if v is None:
        return NA
    if not math.isfinite(v):
        return f"{v}"
    if abs(v) < TINY:
        return "0"
    if abs(v) >= 10**digits:
        return f"{v:,.0f}"
    rounded = float(f"{v:.{digits}g}")  # rounding may carry into the next power of ten (999.99)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))
    text = f"{rounded:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def ratio(value: Any) -> str:
    """Return a ratio with two decimals, or whole from 100,000 up (never powers of ten).

    Ratios annualised from a few days of minute bars can run to millions; their decimals say
    nothing, so such a figure is shown whole.

    Examples
    --------
    >>> ratio(1.234), ratio(-99_999.0), ratio(2.5e7), ratio(float("inf")), ratio(None)
    ('1.23', '-99,999.00', '25,000,000', 'inf', 'n/a')
    """
    v = _shown(value)
    return number(v) if v is None or abs(v) < 1e5 else number(v, 0)


def money(value: Any, currency: str = "") -> str:
    """Return an amount with two decimals, thousands separators and its currency.

    Examples
    --------
    >>> money(-1271.926, "USDT"), money(3.0), money(None, "USD")
    ('-1,271.93 USDT', '3.00', 'n/a')
    """
    v = _shown(value)
    if v is None:
        return NA
    return f"{v:,.2f} {currency}" if currency else f"{v:,.2f}"


def figure(value: Any) -> str:
    """Return a gate's or the evidence's figure: floats by size, anything else as it is.

    A float of 1,000 or more is money-sized and gets two decimals and separators; a smaller one is
    a ratio or a share and keeps four significant digits. Ints and words are shown as they are.

    Examples
    --------
    >>> figure(0.012345), figure(10234.5), figure(7), figure("none"), figure(None), figure(5.551e-17)
    ('0.01235', '10,234.50', '7', 'none', 'n/a', '0')
    """
    if value is None or (isinstance(value, float) and value != value):
        return NA
    if isinstance(value, float):
        return number(value) if abs(value) >= 1000 else significant(value)
    return str(value)


def duration(value: Any) -> str:
    """Return a time span (a `pandas.Timedelta` or what makes one) in words; ``n/a`` for None or NaT.

    Examples
    --------
    >>> duration("0 days 00:03:20"), duration("2 days"), duration(None)
    ('3 min', '2 d', 'n/a')
    """
    if value is None:
        return NA
    import pandas as pd

    from labkit.timeutil import human_duration

    span = pd.Timedelta(value)
    return NA if span is pd.NaT else human_duration(span.total_seconds())
