"""The follow-up schedule, pure: time points and their windows from a family's consent and randomisation dates.

Baseline (month 0) is due from the consent; later time points are anchored to the randomisation date, in calendar
months, with windows of whole days (dates in Europe/Oslo): the first follow-up's window from its own settings
(default -14/+28 days), later ones from theirs (default ±30 days). The schedule is the same in both arms.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from trial.dates import add_months

BASELINE = 0


@dataclass(frozen=True)
class Window:
    months: int  # 0 = baseline
    opens_on: date
    target_on: date
    closes_on: date | None  # None: baseline, open until randomisation


def baseline_window(consented_on: date) -> Window:
    return Window(BASELINE, consented_on, consented_on, None)


def follow_up_windows(
    randomised_on: date,
    *,
    months: list[int],
    first_before: int,
    first_after: int,
    later_before: int,
    later_after: int,
) -> list[Window]:
    windows = []
    for index, month in enumerate(sorted(months)):
        before, after = (first_before, first_after) if index == 0 else (later_before, later_after)
        target = add_months(randomised_on, month)
        windows.append(Window(month, target - timedelta(days=before), target, target + timedelta(days=after)))
    return windows


def windows_from_settings(randomised_on: date, trial_settings) -> list[Window]:
    return follow_up_windows(
        randomised_on,
        months=list(trial_settings.follow_up_months),
        first_before=trial_settings.assessment_window_days_before,
        first_after=trial_settings.assessment_window_days_after,
        later_before=trial_settings.later_window_days_before,
        later_after=trial_settings.later_window_days_after,
    )
