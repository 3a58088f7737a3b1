from datetime import date
from decimal import Decimal

import pytest

from reports.cells import safe_cell


@pytest.mark.parametrize("text", ["=1+1", "+47 99", "-2+3", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")'])
def test_it_makes_text_that_starts_a_formula_inert(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["OEI-007", "", "a=b", -3, 2.5, Decimal("-1.5"), date(2026, 1, 1), None])
def test_it_leaves_everything_else_alone(value):
    assert safe_cell(value) == value
