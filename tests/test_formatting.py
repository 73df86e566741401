"""pipeline/formatting.py: the one way numbers read in the card, the review, the monitor and reproduce reports."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline import formatting as fmt


@pytest.mark.parametrize("missing", [None, float("nan"), np.float64("nan")])
@pytest.mark.parametrize("func", [fmt.num, fmt.signed, fmt.pct, fmt.pp, fmt.count, fmt.small, fmt.general])
def test_a_missing_value_reads_as_the_missing_mark(func, missing):
    assert func(missing) == fmt.MISSING == "—"


def test_each_format_reads_as_documented():
    assert fmt.num(0.99104) == "0.9910"
    assert fmt.num(np.float64(0.5), digits=3) == "0.500"
    assert fmt.signed(0.02531) == "+0.0253"
    assert fmt.signed(-0.02531, digits=2) == "-0.03"
    assert fmt.pct(0.0067) == "0.7%"
    assert fmt.pct(0.0067, digits=2) == "0.67%"
    assert fmt.pp(0.021) == "2.1 pp"
    assert fmt.count(368645) == "368,645"
    assert fmt.count(np.int64(12)) == "12"
    assert fmt.small(0) == "0"
    assert fmt.small(1.234e-7) == "1.2e-07"
    assert fmt.general(0.000123456789) == "0.000123457"
    assert fmt.interval(0.98912, 0.99251) == "[0.9891, 0.9925]"
    assert fmt.interval(-0.01, 0.02, fmt.signed) == "[-0.0100, +0.0200]"
    assert fmt.interval(None, 0.2) == fmt.interval(0.1, math.nan) == fmt.MISSING


@given(st.floats(min_value=0, max_value=1), st.integers(min_value=0, max_value=4))
def test_a_percentage_is_the_rate_times_100(x, digits):
    """The card wrote 100*x with 'f', the review 'x:%': the one function keeps both readings identical."""
    assert fmt.pct(x, digits) == f"{100 * x:.{digits}f}%"
