"""Number formatting: one way to show each figure, n/a for what is missing (issue 17)."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pandas as pd
import pytest

from labkit.analysis import formatting
from labkit.analysis.formatting import (
    NA,
    as_float,
    duration,
    figure,
    finite,
    is_number,
    money,
    number,
    percent,
    ratio,
    share,
    significant,
)

NAN, INF = float("nan"), float("inf")


def test_formatting_when_doctested_examples_hold():
    result = doctest.testmod(formatting)
    assert result.attempted >= 12 and result.failed == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1234.5678, "1,234.57"),
        (-1234.5678, "-1,234.57"),
        (0, "0.00"),
        (-0.0, "0.00"),  # negative zero is zero
        (-0.001, "-0.00"),  # a small loss rounds to zero but keeps its sign
        (None, NA),
        (NAN, NA),
        (np.float64("nan"), NA),
        (pd.NA, NA),
        (True, NA),  # a flag is not a figure
        ("1.5", "1.50"),
        ("abc", NA),
        (INF, "inf"),
        (-INF, "-inf"),
        (1e20, "100,000,000,000,000,000,000.00"),
        (1e-12, "0.00"),
        (np.int64(7), "7.00"),
    ],
)
def test_number_when_given_any_figure_shows_two_decimals_or_na(value, expected):
    assert number(value) == expected


def test_number_when_digits_given_uses_them():
    assert (number(3.14159, 4), number(2.5, 0), number(1234.5, 1)) == ("3.1416", "2", "1,234.5")


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [(12.345, 2, "12.35%"), (-3.0, 1, "-3.0%"), (-0.0, 2, "0.00%"), (None, 2, NA), (NAN, 1, NA), (INF, 2, "inf%")],
)
def test_percent_when_figure_is_in_percent_appends_the_sign_only(value, digits, expected):
    assert percent(value, digits) == expected


@pytest.mark.parametrize(
    ("value", "digits", "sign", "expected"),
    [
        (0.1234, 1, False, "12.3%"),
        (0.5, 0, False, "50%"),
        (0.00123, 3, True, "+0.123%"),
        (-0.00123, 3, True, "-0.123%"),
        (0.0, 3, True, "+0.000%"),
        (-0.0, 3, True, "+0.000%"),  # negative zero is no loss
        (-0.0, 0, False, "0%"),
        (None, 1, False, NA),
        (NAN, 2, True, NA),
        (-INF, 1, False, "-inf%"),
        (1e-12, 2, False, "0.00%"),
        (1e15, 0, False, "100000000000000000%"),
    ],
)
def test_share_when_given_a_fraction_shows_a_percentage(value, digits, sign, expected):
    assert share(value, digits, sign=sign) == expected


def test_share_when_fraction_times_100_agrees_with_percent_of_the_product():
    # The CLI showed a share as percent(value * 100); the % format multiplies the same way.
    for value in (0.123456789, 1 / 3, 2 / 3, 0.5449, 0.99999):
        assert share(value, 1) == percent(value * 100.0, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.123456, "0.1235"),
        (123456.0, "123,456"),
        (1e-300, "0"),
        (5.551e-17, "0"),  # float residue of a sum, not a figure
        (-9.9e-7, "0"),
        (1.2e-6, "0.0000012"),
        (0.0000123456, "0.00001235"),
        (999.99, "1,000"),
        (-0.0, "0"),
        (5, "5"),
        (INF, "inf"),
        (None, NA),
        (NAN, NA),
    ],
)
def test_significant_when_given_a_number_keeps_four_digits(value, expected):
    assert significant(value) == expected


@pytest.mark.parametrize("value", [5.551e-17, 1e-9, 2.5e-6, 0.1, 1.4146470451501785, 1e15, -3.3e21])
def test_significant_when_any_size_never_writes_powers_of_ten(value):
    assert "e" not in significant(value, 6)


def test_significant_when_asked_for_six_digits_shows_a_position_readably():
    assert significant(1.4146470451501785, 6) == "1.41465"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.234, "1.23"),
        (99_999.0, "99,999.00"),
        (100_000.0, "100,000"),
        (-2.5e7, "-25,000,000"),
        (INF, "inf"),
        (None, NA),
        (NAN, NA),
        ("x", NA),
    ],
)
def test_ratio_when_huge_shows_it_whole_without_powers_of_ten(value, expected):
    assert ratio(value) == expected


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (-1271.926, "USDT", "-1,271.93 USDT"),
        (3.0, "", "3.00"),
        (-0.0, "USD", "0.00 USD"),
        (None, "USD", NA),
        (NAN, "USD", NA),
        (1e12, "USD", "1,000,000,000,000.00 USD"),
    ],
)
def test_money_when_given_an_amount_shows_two_decimals_and_the_currency(value, currency, expected):
    assert money(value, currency) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.012345, "0.01235"),
        (999.99, "1,000"),
        (1000.0, "1,000.00"),
        (-10234.5, "-10,234.50"),
        (-0.0, "0"),
        (7, "7"),  # counts as they are
        (10_000, "10000"),
        (False, "False"),
        ("none", "none"),
        (None, NA),
        (NAN, NA),
        (INF, "inf"),
        (1e-9, "0"),
        (5.551e-17, "0"),
    ],
)
def test_figure_when_given_a_gate_figure_shows_it_by_its_size(value, expected):
    assert figure(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0 days 00:03:20", "3 min"), (pd.Timedelta(hours=30), "30 h"), ("2 days", "2 d"), (None, NA), (pd.NaT, NA)],
)
def test_duration_when_given_a_span_says_it_in_one_unit(value, expected):
    assert duration(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2, 2.0), (0.5, 0.5), (-0.0, -0.0), (np.float64(1.5), 1.5), (NAN, None), (INF, None), (-INF, None),
     (None, None), (True, None), ("1", None)],
)
def test_finite_when_not_a_finite_number_returns_none(value, expected):
    result = finite(value)
    assert result == expected and (result is None) == (expected is None)


def test_as_float_when_not_a_number_returns_the_default():
    assert math.isnan(as_float(None)) and math.isnan(as_float("abc")) and math.isnan(as_float(True))
    assert (as_float(None, 0.0), as_float(True, 0.0), as_float("2"), as_float(np.int32(3))) == (0.0, 0.0, 2.0, 3.0)


def test_is_number_when_a_flag_or_text_says_no():
    assert [is_number(v) for v in (1, 1.0, np.float64(1.0), NAN, True, "1", None)] == [
        True, True, True, True, False, False, False,
    ]  # fmt: skip
