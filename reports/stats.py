"""The report's statistics, pure: no database, no Django.

- The Wilson score interval for a proportion (Wilson 1927; Newcombe 1998, method 3), the interval the
  progression criteria show: it stays inside 0..1 and behaves at 0 and at n, unlike the Wald interval.
- Bang's blinding index (Bang, Ni and Davis 2004, Controlled Clinical Trials 25:143-156) for one arm from the
  2 x 3 table of guesses (correct, incorrect, don't know), with its large-sample 95 % confidence interval.
"""

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def wilson_interval(successes: int, n: int, z: float = Z95) -> Interval | None:
    """The Wilson score interval of `successes` out of `n`; None when there is nothing to estimate (n = 0) or the
    count is not a proportion (more successes than trials, or a negative count)."""
    if n <= 0 or successes < 0 or successes > n:
        return None
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    denominator = 1 + z2 / n
    # Clamp rounding noise at the ends (0 successes gives exactly 0 in exact arithmetic).
    return Interval(max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator))


@dataclass(frozen=True)
class BlindingEstimate:
    n: int  # every guess, "don't know" included
    index: float | None
    low: float | None
    high: float | None


def bang_blinding_index(correct: int, incorrect: int, dont_know: int, z: float = Z95) -> BlindingEstimate:
    """Bang's index for one arm: BI = (2 c / (c + i) - 1) (c + i) / n = (c - i) / n, where c guesses named the
    family's real arm, i the other arm, and n counts every answer (don't know too). -1 is all guessing the opposite,
    0 random guessing, 1 complete unblinding. Its variance is Var(p_c - p_i) of the multinomial,
    (p_c (1 - p_c) + p_i (1 - p_i) + 2 p_c p_i) / n; the interval is BI +/- z SE (Bang et al. 2004, section 2.2)."""
    n = correct + incorrect + dont_know
    if n <= 0:
        return BlindingEstimate(0, None, None, None)
    p_c, p_i = correct / n, incorrect / n
    index = p_c - p_i
    variance = (p_c * (1 - p_c) + p_i * (1 - p_i) + 2 * p_c * p_i) / n
    se = math.sqrt(variance)
    return BlindingEstimate(n, index, index - z * se, index + z * se)
