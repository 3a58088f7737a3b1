"""The report's statistics against published worked examples."""

import pytest

from reports.stats import bang_blinding_index, wilson_interval


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # Newcombe RG (1998), Two-sided confidence intervals for the single proportion, Stat Med 17:857-872,
        # Table I, method 3 (Wilson score interval without continuity correction).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_it_matches_newcombes_wilson_intervals(successes, n, low, high):
    interval = wilson_interval(successes, n)

    assert interval is not None
    assert interval.low == pytest.approx(low, abs=0.00005)
    assert interval.high == pytest.approx(high, abs=0.00005)


def test_it_reaches_one_when_every_trial_succeeds():
    interval = wilson_interval(20, 20)

    assert interval is not None
    assert interval.high == 1.0
    assert interval.low == pytest.approx(1 - 0.1611, abs=0.00005)  # Newcombe's 0/20, mirrored


@pytest.mark.parametrize(("successes", "n"), [(0, 0), (5, 4), (-1, 4)])
def test_it_gives_no_interval_when_there_is_no_proportion(successes, n):
    assert wilson_interval(successes, n) is None


@pytest.mark.parametrize(
    ("correct", "incorrect", "dont_know", "index", "low", "high"),
    [
        # The worked example of Bang's index in the BI package for R (Schwartz and Mercaldo; the 3 x 2 table
        # [[48, 22], [4, 30], [330, 319]]): treatment arm 0.115 (0.080 to 0.150), placebo arm 0.022 (-0.016 to
        # 0.060), standard errors 0.018 and 0.019.
        (48, 4, 330, 0.115, 0.080, 0.150),
        (30, 22, 319, 0.022, -0.016, 0.060),
    ],
)
def test_it_matches_the_worked_example_of_bangs_index(correct, incorrect, dont_know, index, low, high):
    estimate = bang_blinding_index(correct, incorrect, dont_know)

    assert estimate.n == correct + incorrect + dont_know
    assert estimate.index == pytest.approx(index, abs=0.0005)
    assert estimate.low == pytest.approx(low, abs=0.0005)
    assert estimate.high == pytest.approx(high, abs=0.0005)


def test_it_reads_bangs_index_at_its_ends():
    assert bang_blinding_index(10, 0, 0).index == 1.0  # everyone knew
    assert bang_blinding_index(0, 10, 0).index == -1.0  # everyone guessed the opposite
    assert bang_blinding_index(0, 0, 10).index == 0.0  # nobody guessed: perfect blinding
    assert bang_blinding_index(5, 5, 0).index == 0.0  # random guessing


def test_it_gives_no_index_without_guesses():
    estimate = bang_blinding_index(0, 0, 0)

    assert (estimate.n, estimate.index, estimate.low, estimate.high) == (0, None, None, None)
