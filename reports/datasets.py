"""The analysis datasets: one definition of each dataset's variables serves its files (CSV, Excel, Stata, SPSS) and
its codebook, so that the two can never disagree.

- `families`: one row per family of the covered sites (wide: one status and date per time point);
- `assessments`: one row per family and time point (long);
- `contacts`: one row per Family Partner contact (long); only intervention families have contacts, so the dataset
  reveals the arm and follows the arm's rule.

Rows hold raw codes (the database's choice values, 0/1 flags, dates, numbers); the renderers (`reports.dataset_files`)
turn codes into labels or integer codes with value labels. Rows are made chunk by chunk (CHUNK families at a time,
a constant number of queries per chunk), so that a streamed CSV holds one chunk in memory whatever the trial's size.

Never a direct identifier: nothing here reads `FamilyIdentity`, a contact's notes, or any free text (details,
reasons written by hand, void reasons); birth dates only become ages. A blinded user's datasets have no arm, no
dose, no guess, and no contacts: the row builders do not even read them then.
"""

import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db.models import Count
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from families.models import (
    Child,
    Consent,
    ConsentDecision,
    Criterion,
    DeclineReason,
    Family,
    FamilyStatus,
    Parent,
    ReferralSource,
    Screening,
    StruggleArea,
    WithdrawalReason,
)
from followups import selectors as followup_selectors
from followups.models import (
    ArmGuess,
    Assessment,
    AssessmentMode,
    AssessmentStatus,
    LostReason,
    MissedReason,
    StopReason,
)
from followups.selectors import time_point_label
from randomization.models import Arm
from reports.models import MAX_SHIFT_DAYS, MIN_SHIFT_DAYS, DateShift
from reports.tables import Label
from trial import dates
from trial.models import Site, TrialSettings
from visits import weeks
from visits.models import Contact, ContactDay, ContactKind, Element, EndReason, InterventionPeriod
from visits.selectors import expected_quarters, target_quarters

MAX_NAME_LENGTH = 31  # a variable's name in a Stata file (readstat refuses 32)
CHUNK = 1000  # families per chunk
CONTACT_CHUNK = 100  # families per chunk of the contacts dataset (tens of contacts each)

Code = str | int
Cell = str | int | float | date | None

# What a variable holds: the codebook's "type".
TEXT, INT, FLOAT, DATE, CODE, FLAG = "text", "int", "float", "date", "code", "flag"
KIND_LABELS: dict[str, Label] = {
    TEXT: _("text"),
    INT: _("whole number"),
    FLOAT: _("decimal number"),
    DATE: _("date"),
    CODE: _("code"),
    FLAG: _("0/1"),
}
YES_NO: tuple[tuple[Code, Label], ...] = (
    (0, pgettext_lazy("a 0/1 value", "no")),
    (1, pgettext_lazy("a 0/1 value", "yes")),
)


@dataclass(frozen=True)
class Variable:
    name: str  # the column's name in every file: lowercase ASCII, at most 31 characters (what Stata files take)
    label: Label
    kind: str = TEXT
    values: tuple[tuple[Code, Label], ...] = ()  # the allowed codes of a CODE or FLAG variable, with their labels
    reveals_arm: bool = False  # left out for blinded users

    def __post_init__(self) -> None:
        assert len(self.name) <= MAX_NAME_LENGTH, self.name
        if self.kind == FLAG and not self.values:
            object.__setattr__(self, "values", YES_NO)

    @property
    def coded(self) -> bool:
        return self.kind in (CODE, FLAG)

    @property
    def kind_label(self) -> Label:
        return KIND_LABELS[self.kind]


@dataclass(frozen=True)
class ExportScope:
    """Whose data a download holds and how: the sites covered (None: all), whether the user is blinded, and
    whether dates are shifted."""

    site_ids: frozenset[int] | None
    blinded: bool
    shifted: bool = False


@dataclass(frozen=True)
class Dataset:
    key: str
    title: Label
    variables: list[Variable]
    chunks: Callable[[], Iterator[list[tuple[Cell, ...]]]] = field(repr=False)


FAMILIES, ASSESSMENTS, CONTACTS = "families", "assessments", "contacts"
DATASET_TITLES: dict[str, Label] = {
    FAMILIES: _("Families (one row per family)"),
    ASSESSMENTS: _("Assessments (one row per family and time point)"),
    CONTACTS: _("Family Partner contacts (one row per contact)"),
}


def dataset_keys(*, blinded: bool) -> list[str]:
    """The datasets a user may download: the contacts reveal the arm, so blinded users do not get them."""
    return [FAMILIES, ASSESSMENTS] if blinded else [FAMILIES, ASSESSMENTS, CONTACTS]


def _choices(choices: Iterable[tuple[str, Label]]) -> tuple[tuple[Code, Label], ...]:
    return tuple((code, label) for code, label in choices)


def site_values() -> tuple[tuple[Code, Label], ...]:
    # In the order the sites were made, so that a site's integer code in Stata and SPSS files never changes.
    return tuple((code, f"{name}") for code, name in Site.objects.order_by("pk").values_list("code", "name"))


def time_points(trial_settings: TrialSettings) -> list[int]:
    """Baseline, the schedule's time points, and any other time point an assessment has (after a schedule
    change), so that no assessment is left out of the families dataset."""
    recorded = set(Assessment.objects.order_by().values_list("months", flat=True).distinct())
    return followup_selectors.time_points(trial_settings, extra=recorded)


# --- The variables -------------------------------------------------------------------------------------------


def family_variables(*, sites, months: list[int], blinded: bool, shifted: bool) -> list[Variable]:
    when = _date_label(shifted)
    variables = [
        Variable("study_id", _("Study ID")),
        Variable("site", _("Site"), CODE, sites),
        Variable("arm", _("Arm"), CODE, _choices(Arm.choices), reveals_arm=True),
        Variable("referral_date", when(_("Referral date")), DATE),
        Variable("referral_source", _("Referral source"), CODE, _choices(ReferralSource.choices)),
        Variable("status", _("Status"), CODE, _choices(FamilyStatus.choices)),
        Variable("screenings_n", _("Number of screenings"), INT),
        Variable("screening_date", when(_("Latest screening: date")), DATE),
        Variable("eligible", _("Latest screening: eligible"), FLAG),
        Variable("oldest_parent_age", _("Latest screening: oldest parent's age (years, from the birth year)"), INT),
        Variable("youngest_child_age", _("Latest screening: youngest child's age (whole years)"), INT),
        Variable("child_welfare", _("Latest screening: involved with child welfare services"), FLAG),
        Variable("harmful_circumstances", _("Latest screening: potentially harmful circumstances"), FLAG),
        Variable("struggle_areas_n", _("Latest screening: number of areas the parents struggle in"), INT),
        *[
            Variable(f"struggle_{code}", _("Struggles with: %(area)s") % {"area": label}, FLAG)
            for code, label in StruggleArea.choices
        ],
        *[
            Variable(f"failed_{code}", _("Failed criterion: %(criterion)s") % {"criterion": label}, FLAG)
            for code, label in Criterion.choices
        ],
        Variable("children_n", _("Number of children"), INT),
        Variable("consent_decision", _("Latest decision on consent"), CODE, _choices(ConsentDecision.choices)),
        Variable("consent_date", when(_("Date of the latest decision on consent")), DATE),
        Variable("decline_reason", _("Reason for declining"), CODE, _choices(DeclineReason.choices)),
        Variable("randomisation_date", when(_("Randomisation date")), DATE),
        Variable("stratum", _("Stratum (site at randomisation)"), CODE, sites),
        Variable("withdrawal_date", when(_("Withdrawal date")), DATE),
        Variable("withdrawal_reason", _("Reason for withdrawal"), CODE, _choices(WithdrawalReason.choices)),
        Variable("withdrawal_data_kept", _("Data collected before the withdrawal may be kept"), FLAG),
        Variable("lost_date", when(_("Lost to follow-up: date")), DATE),
        Variable("lost_reason", _("Lost to follow-up: reason"), CODE, _choices(LostReason.choices)),
    ]
    for month in months:
        point = time_point_label(month)
        variables += [
            Variable(
                f"fu{month}_status",
                _("Assessment at %(time_point)s: status") % {"time_point": point},
                CODE,
                _choices(AssessmentStatus.choices),
            ),
            Variable(f"fu{month}_date", when(_("Assessment at %(time_point)s: date") % {"time_point": point}), DATE),
        ]
    variables += [
        Variable("intervention_start", when(_("Intervention started")), DATE, reveals_arm=True),
        Variable("intervention_end", when(_("Intervention ended")), DATE, reveals_arm=True),
        Variable(
            "intervention_end_reason",
            _("Why the intervention ended"),
            CODE,
            _choices(EndReason.choices),
            reveals_arm=True,
        ),
        Variable("family_weeks", _("Family-weeks in the intervention (to its end or today)"), FLOAT, reveals_arm=True),
        Variable("hours_total", _("Hours of contact in total (contacts not voided)"), FLOAT, reveals_arm=True),
        Variable("hours_per_week", _("Mean hours of contact per family-week"), FLOAT, reveals_arm=True),
        Variable(
            "weeks_on_target",
            _("Share of the intervention's finished weeks on the weekly target (0 to 1)"),
            FLOAT,
            reveals_arm=True,
        ),
        Variable("contacts_n", _("Number of contacts (not voided)"), INT, reveals_arm=True),
    ]
    return _for(variables, blinded)


def assessment_variables(*, sites, blinded: bool, shifted: bool) -> list[Variable]:
    when = _date_label(shifted)
    variables = [
        Variable("study_id", _("Study ID")),
        Variable("site", _("Site"), CODE, sites),
        Variable("months", _("Time point (months after randomisation; 0 is baseline)"), INT),
        Variable("opens_on", when(_("Window opens")), DATE),
        Variable("target_on", when(_("Target date")), DATE),
        Variable("closes_on", when(_("Window closes")), DATE),
        Variable("status", _("Status"), CODE, _choices(AssessmentStatus.choices)),
        Variable("date", when(_("Date done, missed or refused")), DATE),
        Variable("mode", _("Mode"), CODE, _choices(AssessmentMode.choices)),
        Variable("questionnaires", _("Questionnaires collected (separated by semicolons)")),
        Variable("outside_window", _("Done outside the window"), FLAG),
        Variable("missed_reason", _("Why it was missed"), CODE, _choices(MissedReason.choices)),
        Variable("stopped_on", when(_("Schedule stopped on")), DATE),
        Variable("stop_reason", _("Why it stopped"), CODE, _choices(StopReason.choices)),
        Variable("arm_guess", _("Arm guessed by the assessor"), CODE, _choices(ArmGuess.choices), reveals_arm=True),
    ]
    return _for(variables, blinded)


def contact_variables(*, sites, shifted: bool) -> list[Variable]:
    when = _date_label(shifted)
    return [
        Variable("study_id", _("Study ID"), reveals_arm=True),
        Variable("site", _("Site"), CODE, sites, reveals_arm=True),
        Variable("contact_date", when(_("Date of the contact")), DATE, reveals_arm=True),
        Variable("quarters", _("Duration (quarter-hours)"), INT, reveals_arm=True),
        Variable("hours", _("Duration (hours)"), FLOAT, reveals_arm=True),
        Variable("kind", _("Kind of contact"), CODE, _choices(ContactKind.choices), reveals_arm=True),
        *[
            Variable(
                f"elem_{code}", _("Element of the model: %(element)s") % {"element": label}, FLAG, reveals_arm=True
            )
            for code, label in Element.choices
        ],
        Variable("voided", _("Voided (logged by mistake; counts nowhere)"), FLAG, reveals_arm=True),
    ]


def _for(variables: list[Variable], blinded: bool) -> list[Variable]:
    return [variable for variable in variables if not (blinded and variable.reveals_arm)]


def _date_label(shifted: bool) -> Callable[[Label], Label]:
    if not shifted:
        return lambda label: label
    return lambda label: _("%(label)s (shifted)") % {"label": label}


# --- Date shifts ---------------------------------------------------------------------------------------------


def draw_shift_days() -> int:
    return MIN_SHIFT_DAYS + secrets.randbelow(MAX_SHIFT_DAYS - MIN_SHIFT_DAYS + 1)


def date_shifts(family_ids: list[int]) -> dict[int, int]:
    """{family id: days earlier} for these families, drawn the first time a family needs one.

    Two downloads at once may both find a family without a shift: both insert with ON CONFLICT DO NOTHING (the
    one-to-one's unique index decides), then both read back the one that won, so a family never gets two shifts
    and every download moves its dates by the same days."""
    shifts = dict(DateShift.objects.filter(family_id__in=family_ids).values_list("family_id", "days"))
    missing = [family_id for family_id in family_ids if family_id not in shifts]
    if missing:
        DateShift.objects.bulk_create(
            [DateShift(family_id=family_id, days=draw_shift_days()) for family_id in missing], ignore_conflicts=True
        )
        shifts = dict(DateShift.objects.filter(family_id__in=family_ids).values_list("family_id", "days"))
    return shifts


class _Dates:
    """A family's dates as the dataset shows them: as they are, or shifted by the family's days."""

    def __init__(self, family_ids: list[int], shifted: bool) -> None:
        self.shifts = date_shifts(family_ids) if shifted else {}

    def of(self, family_id: int) -> Callable[[date | None], date | None]:
        days = self.shifts.get(family_id, 0)
        if not days:
            return lambda day: day
        return lambda day: None if day is None else day - timedelta(days=days)


# --- The rows ------------------------------------------------------------------------------------------------


def _families_in(scope: ExportScope):
    families = Family.objects.order_by("pk")
    if scope.site_ids is not None:
        families = families.filter(site_id__in=scope.site_ids)
    return families


def _family_chunks(scope: ExportScope, fields: list[str], size: int) -> Iterator[list[dict]]:
    """The families of the scope in primary-key order, `size` at a time (keyset pagination: one query a chunk)."""
    families = _families_in(scope)
    last = 0
    while True:
        chunk = list(families.filter(pk__gt=last).values("pk", *fields)[:size])
        if not chunk:
            return
        yield chunk
        last = chunk[-1]["pk"]


def _site_codes() -> dict[int, str]:
    return dict(Site.objects.values_list("pk", "code"))


def _latest_by_family(rows: Iterable[Mapping[str, Any]]) -> tuple[dict[int, Mapping[str, Any]], dict[int, int]]:
    """The last row of each family (rows ordered oldest first) and each family's number of rows."""
    latest: dict[int, Mapping[str, Any]] = {}
    counts: dict[int, int] = defaultdict(int)
    for row in rows:
        latest[row["family_id"]] = row
        counts[row["family_id"]] += 1
    return latest, counts


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(bool(value))


def _age_in_years(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


@dataclass(frozen=True)
class Dose:
    family_weeks: float
    hours_total: float
    hours_per_week: float | None
    weeks_on_target: float | None


def intervention_dose(
    *, started_on: date, ended_on: date | None, days: list[tuple[date, int]], target: int, today: date
) -> Dose:
    """A family's dose: family-weeks from the intervention's start to its end (or today), hours of contacts not
    voided, hours per family-week, and the share of its finished ISO weeks whose hours reached the weekly target
    (prorated for a week the intervention only partly covered, as the weekly hours page judges them)."""
    end = min(ended_on or today, today)
    family_weeks = max((end - started_on).days + 1, 0) / 7
    quarters = sum(q for _day, q in days)
    per_week: dict[date, int] = defaultdict(int)
    for day, q in days:
        per_week[weeks.week_start(day)] += q
    period = InterventionPeriod(started_on=started_on, ended_on=ended_on)
    judged = on_target = 0
    week = weeks.week_of(started_on)
    while week.start <= end:
        finished = week.end < today or (ended_on is not None and ended_on < today)
        expected = expected_quarters(period, week, target)
        if finished and expected > 0:
            judged += 1
            on_target += per_week.get(week.start, 0) >= expected
        week = week.shifted(1)
    hours_total = float(weeks.hours(quarters))
    return Dose(
        family_weeks=round(family_weeks, 2),
        hours_total=hours_total,
        hours_per_week=round(hours_total / family_weeks, 2) if family_weeks else None,
        weeks_on_target=round(on_target / judged, 3) if judged else None,
    )


def _family_rows(scope: ExportScope, variables: list[Variable], months: list[int]) -> Iterator[list[tuple]]:
    site_codes = _site_codes()
    trial_settings = TrialSettings.current()
    target = target_quarters(trial_settings)
    today = dates.today()
    fields = [
        "study_id",
        "site_id",
        "referral_date",
        "referral_source",
        "status",
        "allocation__randomised_at",
        "allocation__site_id",
        "withdrawal__withdrawn_on",
        "withdrawal__reason",
        "withdrawal__data_may_be_kept",
        "lost_to_follow_up__lost_on",
        "lost_to_follow_up__reason",
    ]
    if not scope.blinded:  # not even read for a blinded user
        fields += ["allocation__arm", "intervention__started_on", "intervention__ended_on", "intervention__end_reason"]
    names = [variable.name for variable in variables]
    for chunk in _family_chunks(scope, fields, CHUNK):
        ids = [family["pk"] for family in chunk]
        screenings, screening_counts = _latest_by_family(
            Screening.objects.filter(family_id__in=ids)
            .order_by("family_id", "recorded_at", "pk")
            .values(
                "family_id",
                "screened_on",
                "eligible",
                "involved_with_child_welfare",
                "harmful_circumstances",
                "struggle_areas",
                "failed_criteria",
            )
        )
        consents, _counts = _latest_by_family(
            Consent.objects.filter(family_id__in=ids)
            .order_by("family_id", "recorded_at", "pk")
            .values("family_id", "decision", "decided_on", "decline_reason")
        )
        parent_years: dict[int, list[int]] = defaultdict(list)
        for family_id, year in Parent.objects.filter(family_id__in=ids).values_list("family_id", "birth_year"):
            parent_years[family_id].append(year)
        birth_dates: dict[int, list[date]] = defaultdict(list)
        for family_id, birth_date in Child.objects.filter(family_id__in=ids).values_list("family_id", "birth_date"):
            birth_dates[family_id].append(birth_date)
        assessments: dict[tuple[int, int], tuple[str, date | None]] = {
            (family_id, month): (status, done_on)
            for family_id, month, status, done_on in Assessment.objects.filter(family_id__in=ids).values_list(
                "family_id", "months", "status", "done_on"
            )
        }
        contact_days: dict[int, list[tuple[date, int]]] = defaultdict(list)
        contact_counts: dict[int, int] = {}
        if not scope.blinded:
            in_intervention = [family["pk"] for family in chunk if family["intervention__started_on"] is not None]
            for family_id, day, quarters in ContactDay.objects.filter(
                family_id__in=in_intervention, quarters__gt=0
            ).values_list("family_id", "day", "quarters"):
                contact_days[family_id].append((day, quarters))
            contact_counts = dict(
                Contact.objects.filter(family_id__in=in_intervention, voided_at__isnull=True)
                .order_by()
                .values_list("family_id")
                .annotate(n=Count("pk"))
                .values_list("family_id", "n")
            )
        shifts = _Dates(ids, scope.shifted)
        rows = []
        for family in chunk:
            family_id = family["pk"]
            shift = shifts.of(family_id)
            screening = screenings.get(family_id)
            consent = consents.get(family_id)
            randomised_at = family["allocation__randomised_at"]
            row: dict[str, Cell] = {
                "study_id": family["study_id"],
                "site": site_codes[family["site_id"]],
                "referral_date": shift(family["referral_date"]),
                "referral_source": family["referral_source"],
                "status": family["status"],
                "screenings_n": screening_counts.get(family_id, 0),
                "children_n": len(birth_dates[family_id]),
                "randomisation_date": shift(dates.today(randomised_at)) if randomised_at else None,
                "stratum": site_codes.get(family["allocation__site_id"]),
                "withdrawal_date": shift(family["withdrawal__withdrawn_on"]),
                "withdrawal_reason": family["withdrawal__reason"],
                "withdrawal_data_kept": _flag(family["withdrawal__data_may_be_kept"]),
                "lost_date": shift(family["lost_to_follow_up__lost_on"]),
                "lost_reason": family["lost_to_follow_up__reason"],
            }
            if screening is not None:
                screened_on = screening["screened_on"]
                areas, failed = set(screening["struggle_areas"]), set(screening["failed_criteria"])
                years, born = parent_years[family_id], birth_dates[family_id]
                row |= {
                    "screening_date": shift(screened_on),
                    "eligible": _flag(screening["eligible"]),
                    "oldest_parent_age": screened_on.year - min(years) if years else None,
                    "youngest_child_age": _age_in_years(max(born), screened_on) if born else None,
                    "child_welfare": _flag(screening["involved_with_child_welfare"]),
                    "harmful_circumstances": _flag(screening["harmful_circumstances"]),
                    "struggle_areas_n": len(areas),
                }
                row |= {f"struggle_{code}": int(code in areas) for code in StruggleArea.values}
                row |= {f"failed_{code}": int(code in failed) for code in Criterion.values}
            if consent is not None:
                row |= {
                    "consent_decision": consent["decision"],
                    "consent_date": shift(consent["decided_on"]),
                    "decline_reason": consent["decline_reason"] or None,
                }
            for month in months:
                status, done_on = assessments.get((family_id, month), (None, None))
                row[f"fu{month}_status"] = status
                row[f"fu{month}_date"] = shift(done_on)
            if not scope.blinded:
                row["arm"] = family["allocation__arm"]
                started_on = family["intervention__started_on"]
                if started_on is not None:
                    dose = intervention_dose(
                        started_on=started_on,
                        ended_on=family["intervention__ended_on"],
                        days=contact_days[family_id],
                        target=target,
                        today=today,
                    )
                    row |= {
                        "intervention_start": shift(started_on),
                        "intervention_end": shift(family["intervention__ended_on"]),
                        "intervention_end_reason": family["intervention__end_reason"] or None,
                        "family_weeks": dose.family_weeks,
                        "hours_total": dose.hours_total,
                        "hours_per_week": dose.hours_per_week,
                        "weeks_on_target": dose.weeks_on_target,
                        "contacts_n": contact_counts.get(family_id, 0),
                    }
            rows.append(tuple(row.get(name) for name in names))
        yield rows


def _assessment_rows(scope: ExportScope, variables: list[Variable]) -> Iterator[list[tuple]]:
    site_codes = _site_codes()
    fields = [
        "family_id",
        "months",
        "opens_on",
        "target_on",
        "closes_on",
        "status",
        "done_on",
        "mode",
        "questionnaires",
        "outside_window",
        "reason",
        "stopped_on",
        "stop_reason",
    ]
    if not scope.blinded:
        fields.append("blinding_guess__guess")
    names = [variable.name for variable in variables]
    for chunk in _family_chunks(scope, ["study_id", "site_id"], CHUNK):
        families = {family["pk"]: family for family in chunk}
        shifts = _Dates(list(families), scope.shifted)
        rows = []
        for assessment in (
            Assessment.objects.filter(family_id__in=list(families)).order_by("family_id", "months").values(*fields)
        ):
            family = families[assessment["family_id"]]
            shift = shifts.of(family["pk"])
            row: dict[str, Cell] = {
                "study_id": family["study_id"],
                "site": site_codes[family["site_id"]],
                "months": assessment["months"],
                "opens_on": shift(assessment["opens_on"]),
                "target_on": shift(assessment["target_on"]),
                "closes_on": shift(assessment["closes_on"]),
                "status": assessment["status"],
                "date": shift(assessment["done_on"]),
                "mode": assessment["mode"] or None,
                "questionnaires": "; ".join(str(name) for name in assessment["questionnaires"]) or None,
                "outside_window": _flag(assessment["outside_window"]),
                "missed_reason": assessment["reason"] or None,
                "stopped_on": shift(assessment["stopped_on"]),
                "stop_reason": assessment["stop_reason"] or None,
                "arm_guess": None if scope.blinded else assessment["blinding_guess__guess"],
            }
            rows.append(tuple(row.get(name) for name in names))
        yield rows


def _contact_rows(scope: ExportScope, variables: list[Variable]) -> Iterator[list[tuple]]:
    if scope.blinded:  # the contacts reveal the arm
        raise PermissionError("the contacts dataset reveals the arm")
    site_codes = _site_codes()
    names = [variable.name for variable in variables]
    for chunk in _family_chunks(scope, ["study_id", "site_id"], CONTACT_CHUNK):
        families = {family["pk"]: family for family in chunk}
        # Never the notes nor the void reason: only these fields are read.
        contacts = list(
            Contact.objects.filter(family_id__in=list(families))
            .order_by("family_id", "contact_date", "pk")
            .values_list("family_id", "contact_date", "duration_quarters", "kind", "elements", "voided_at")
        )
        shifts = _Dates(sorted({contact[0] for contact in contacts}), scope.shifted)
        rows = []
        for family_id, contact_date, quarters, kind, elements, voided_at in contacts:
            family = families[family_id]
            row: dict[str, Cell] = {
                "study_id": family["study_id"],
                "site": site_codes[family["site_id"]],
                "contact_date": shifts.of(family_id)(contact_date),
                "quarters": quarters,
                "hours": float(weeks.hours(quarters)),
                "kind": kind,
                "voided": int(voided_at is not None),
            }
            row |= {f"elem_{code}": int(code in elements) for code in Element.values}
            rows.append(tuple(row.get(name) for name in names))
        if rows:
            yield rows


def build_dataset(key: str, scope: ExportScope) -> Dataset:
    """The dataset `key` for `scope`: its variables now, its rows when `chunks()` is iterated."""
    if key not in dataset_keys(blinded=scope.blinded):
        raise PermissionError(f"no dataset {key!r} for this user")
    sites = site_values()
    if key == FAMILIES:
        months = time_points(TrialSettings.current())
        variables = family_variables(sites=sites, months=months, blinded=scope.blinded, shifted=scope.shifted)
        return Dataset(key, DATASET_TITLES[key], variables, lambda: _family_rows(scope, variables, months))
    if key == ASSESSMENTS:
        variables = assessment_variables(sites=sites, blinded=scope.blinded, shifted=scope.shifted)
        return Dataset(key, DATASET_TITLES[key], variables, lambda: _assessment_rows(scope, variables))
    variables = contact_variables(sites=sites, shifted=scope.shifted)
    return Dataset(key, DATASET_TITLES[key], variables, lambda: _contact_rows(scope, variables))


def codebook(scope: ExportScope) -> list[Dataset]:
    """Every dataset the user may download (variables only; the rows are not read unless asked for)."""
    return [build_dataset(key, scope) for key in dataset_keys(blinded=scope.blinded)]
