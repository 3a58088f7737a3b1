from contextvars import ContextVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords


class RecruitmentState(models.TextChoices):
    """Whether a site takes new families: researchers see it, the feasibility report counts months open."""

    OPEN = "open", _("Open")
    PAUSED = "paused", _("Paused")
    CLOSED = "closed", _("Closed")


class Site(models.Model):
    """A recruiting municipality: one stratum of the randomisation and one scope of access."""

    code = models.CharField(
        _("code"),
        max_length=3,
        unique=True,
        help_text=_("Three capital letters; the prefix of the site's study IDs."),
    )
    name = models.CharField(_("name"), max_length=100, unique=True)
    expected_recruitment = models.PositiveIntegerField(
        _("expected recruitment"), default=15, help_text=_("Families this site expects to randomise.")
    )
    # The last study number handed out at this site. Registration locks this row and increments it,
    # so numbers are gapless and unique even when researchers register at the same moment.
    last_family_number = models.PositiveIntegerField(_("last family number"), default=0, editable=False)
    # Changed with a reason (history keeps every state with its date and reason: the report's months open).
    recruitment_state = models.CharField(
        _("recruitment"), max_length=8, choices=RecruitmentState.choices, default=RecruitmentState.OPEN
    )
    recruitment_state_reason = models.TextField(_("reason for the recruitment state"), blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="trial_sites", blank=True, verbose_name=_("members")
    )
    # Membership changes are recorded by the admin log (LogEntry); see docs/decisions.md.
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        verbose_name = _("site")
        verbose_name_plural = _("sites")
        constraints = [
            models.CheckConstraint(condition=models.Q(code__regex=r"^[A-Z]{3}$"), name="site_code_three_capitals"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


def _default_follow_up_months() -> list[int]:
    return [3, 6, 12, 18]


def _default_questionnaires() -> list[str]:
    # Assumed (docs/decisions.md): the registry names no instruments; the trial's data manager sets the real list.
    return ["SDQ", "PSI-SF", "CWS-survey"]


def _default_block_sizes() -> list[int]:
    return [2, 4, 6]


def is_low_stock(*, remaining: int, length: int, entries: int, percent: int) -> bool:
    """A list runs low with at most `entries` entries, or at most `percent` % of its length, left."""
    return remaining <= entries or remaining * 100 <= length * percent


class TrialSettings(models.Model):
    """The trial's configurable numbers: one row, edited by a data manager in the admin.

    Every figure defaults to the value in docs/trial-rules.md; code reads them from here, never from constants.
    """

    singleton = models.BooleanField(default=True, unique=True, editable=False)

    # Eligibility (registry criteria)
    min_parent_age = models.PositiveSmallIntegerField(
        _("minimum parent age"), default=18, validators=[MinValueValidator(14), MaxValueValidator(30)]
    )
    max_child_age = models.PositiveSmallIntegerField(
        _("children must be younger than (years)"),
        default=18,
        validators=[MinValueValidator(1), MaxValueValidator(18)],
        help_text=_("The registry says under 18; the published pilot used under 12."),
    )
    min_struggle_areas = models.PositiveSmallIntegerField(
        _("minimum number of areas the parents struggle in"),
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(8)],
    )

    # Recruitment, caseload and intensity
    target_sample_size = models.PositiveIntegerField(_("target number of randomised families"), default=45)
    partner_capacity = models.PositiveSmallIntegerField(
        _("families per Family Partner at a time"), default=5, validators=[MinValueValidator(1)]
    )
    weekly_hours_target = models.DecimalField(
        _("hours per family per week"),
        max_digits=4,
        decimal_places=2,
        default=6,
        validators=[MinValueValidator(0)],
    )
    intervention_min_months = models.PositiveSmallIntegerField(_("minimum intervention length (months)"), default=3)
    intervention_expected_months = models.PositiveSmallIntegerField(
        _("expected intervention length (months)"), default=12
    )
    intervention_max_months = models.PositiveSmallIntegerField(_("maximum intervention length (months)"), default=18)
    contact_correction_days = models.PositiveSmallIntegerField(
        _("days a Family Partner may correct a contact without a reason"), default=14
    )
    no_contact_days = models.PositiveSmallIntegerField(
        _("a family needs attention after this many days without a contact"),
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
    )

    # Follow-up
    follow_up_months = models.JSONField(
        _("follow-up time points (months after randomisation)"),
        default=_default_follow_up_months,
        help_text=_("A list of whole months, for example [3, 6, 12, 18]. Baseline is always collected."),
    )
    assessment_window_days_before = models.PositiveSmallIntegerField(
        _("first follow-up's window opens (days before the time point)"),
        default=14,
        validators=[MaxValueValidator(90)],
    )
    assessment_window_days_after = models.PositiveSmallIntegerField(
        _("first follow-up's window closes (days after the time point)"),
        default=28,
        validators=[MaxValueValidator(90)],
    )
    later_window_days_before = models.PositiveSmallIntegerField(
        _("later follow-ups' windows open (days before the time point)"),
        default=30,
        validators=[MaxValueValidator(90)],
    )
    later_window_days_after = models.PositiveSmallIntegerField(
        _("later follow-ups' windows close (days after the time point)"),
        default=30,
        validators=[MaxValueValidator(90)],
    )
    baseline_before_randomisation = models.BooleanField(
        _("baseline must be done before randomisation"),
        default=True,
        help_text=_("When on, a family cannot be randomised before its baseline assessment is recorded."),
    )
    questionnaires = models.JSONField(
        _("questionnaires"),
        default=_default_questionnaires,
        help_text=_("The questionnaires an assessor can mark as collected, for example SDQ, PSI-SF."),
    )

    # Reminders (days)
    reminder_window_opens_days = models.PositiveSmallIntegerField(
        _("remind assessors this many days before a window opens"),
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
    )
    reminder_window_closes_days = models.PositiveSmallIntegerField(
        _("remind assessors this many days before a window closes"),
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(30)],
    )
    reminder_consent_pending_days = models.PositiveSmallIntegerField(
        _("remind researchers of a consent pending for this many days"),
        default=14,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
    )
    reminder_waiting_days = models.PositiveSmallIntegerField(
        _("remind researchers of a family waiting for a Family Partner for more than this many days"),
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
    )

    # Allocation lists: the defaults a data manager starts from when generating or extending a list
    allocation_block_sizes = models.JSONField(
        _("allocation block sizes"),
        default=_default_block_sizes,
        help_text=_("Block sizes drawn at random, for example [2, 4, 6]; each a multiple of the ratio's sum."),
    )
    allocation_ratio_intervention = models.PositiveSmallIntegerField(
        _("allocation ratio, intervention"), default=1, validators=[MinValueValidator(1), MaxValueValidator(9)]
    )
    allocation_ratio_control = models.PositiveSmallIntegerField(
        _("allocation ratio, control"), default=1, validators=[MinValueValidator(1), MaxValueValidator(9)]
    )
    allocation_margin_percent = models.PositiveSmallIntegerField(
        _("allocation list longer than expected recruitment by (%)"),
        default=20,
        validators=[MaxValueValidator(200)],
    )
    allocation_low_stock_entries = models.PositiveSmallIntegerField(
        _("allocation list running low at (entries left)"), default=4
    )
    allocation_low_stock_percent = models.PositiveSmallIntegerField(
        _("allocation list running low at (% left)"), default=20, validators=[MaxValueValidator(100)]
    )

    # Progression criteria (percentages), set in advance of the trial
    progression_recruitment_green = models.PositiveSmallIntegerField(
        _("recruitment: green from (% of target)"), default=75, validators=[MaxValueValidator(100)]
    )
    progression_recruitment_amber = models.PositiveSmallIntegerField(
        _("recruitment: amber from (% of target)"), default=50, validators=[MaxValueValidator(100)]
    )
    progression_consent_green = models.PositiveSmallIntegerField(
        _("consent: green from (% of eligible families)"), default=70, validators=[MaxValueValidator(100)]
    )
    progression_consent_amber = models.PositiveSmallIntegerField(
        _("consent: amber from (% of eligible families)"), default=50, validators=[MaxValueValidator(100)]
    )
    progression_retention_green = models.PositiveSmallIntegerField(
        _("retention: green from (%)"), default=80, validators=[MaxValueValidator(100)]
    )
    progression_retention_amber = models.PositiveSmallIntegerField(
        _("retention: amber from (%)"), default=60, validators=[MaxValueValidator(100)]
    )
    progression_adherence_green = models.PositiveSmallIntegerField(
        _("adherence: green from (% of weeks on target)"), default=75, validators=[MaxValueValidator(100)]
    )
    progression_adherence_amber = models.PositiveSmallIntegerField(
        _("adherence: amber from (% of weeks on target)"), default=50, validators=[MaxValueValidator(100)]
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("trial settings")
        verbose_name_plural = _("trial settings")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(intervention_min_months__lte=models.F("intervention_expected_months"))
                & models.Q(intervention_expected_months__lte=models.F("intervention_max_months")),
                name="trialsettings_intervention_months_ordered",
            ),
        ]

    def __str__(self) -> str:
        return str(_("Trial settings"))

    def clean(self) -> None:
        errors: dict[str, object] = {}
        if not (self.intervention_min_months <= self.intervention_expected_months <= self.intervention_max_months):
            errors["intervention_expected_months"] = _(
                "The expected length must lie between the minimum and the maximum."
            )
        months = self.follow_up_months
        if (
            not isinstance(months, list)
            or not months
            or not all(isinstance(m, int) and not isinstance(m, bool) and 0 < m <= 60 for m in months)
            or sorted(set(months)) != months
        ):
            errors["follow_up_months"] = _(
                "Give whole months between 1 and 60, in increasing order, for example 3, 6, 12."
            )
        names = self.questionnaires
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and 0 < len(n) <= 40 for n in names):
            errors["questionnaires"] = _("Give short names separated by commas, for example %(example)s.") % {
                "example": "SDQ, PSI-SF"
            }
        sizes = self.allocation_block_sizes
        unit = (self.allocation_ratio_intervention or 1) + (self.allocation_ratio_control or 1)
        if (
            not isinstance(sizes, list)
            or not sizes
            or not all(isinstance(n, int) and not isinstance(n, bool) and 2 <= n <= 20 and n % unit == 0 for n in sizes)
        ):
            errors["allocation_block_sizes"] = _(
                "Give block sizes between 2 and 20, each a multiple of the ratio's sum (%(unit)s), for example 2, 4, 6."
            ) % {"unit": unit}
        for name in ("recruitment", "consent", "retention", "adherence"):
            if getattr(self, f"progression_{name}_amber") > getattr(self, f"progression_{name}_green"):
                errors[f"progression_{name}_amber"] = _("Amber must not be above green.")
        if errors:
            raise ValidationError(errors)

    def is_low_stock(self, *, remaining: int, length: int) -> bool:
        """Whether a list with `remaining` of `length` entries left should warn the data manager."""
        return is_low_stock(
            remaining=remaining,
            length=length,
            entries=self.allocation_low_stock_entries,
            percent=self.allocation_low_stock_percent,
        )

    @classmethod
    def current(cls) -> "TrialSettings":
        """The settings row; read once per request (a page asks several times), on every call elsewhere."""
        cache = _settings_of_this_request.get()
        if cache is not None and cache.row is not None:
            return cache.row
        settings_row, _created = cls.objects.get_or_create(singleton=True)
        if cache is not None:
            cache.row = settings_row
        return settings_row


# The trial settings in groups, as the settings page (trial.selectors, trial.forms) and the admin show them.
TRIAL_SETTINGS_GROUPS: list[tuple[str | Promise, list[str]]] = [
    (_("Eligibility"), ["min_parent_age", "max_child_age", "min_struggle_areas"]),
    (
        _("Recruitment, caseload and intensity"),
        [
            "target_sample_size",
            "partner_capacity",
            "weekly_hours_target",
            "intervention_min_months",
            "intervention_expected_months",
            "intervention_max_months",
            "contact_correction_days",
            "no_contact_days",
        ],
    ),
    (
        _("Follow-up"),
        [
            "follow_up_months",
            "assessment_window_days_before",
            "assessment_window_days_after",
            "later_window_days_before",
            "later_window_days_after",
            "baseline_before_randomisation",
            "questionnaires",
        ],
    ),
    (
        _("Reminders"),
        [
            "reminder_window_opens_days",
            "reminder_window_closes_days",
            "reminder_consent_pending_days",
            "reminder_waiting_days",
        ],
    ),
    (
        _("Allocation lists"),
        [
            "allocation_block_sizes",
            "allocation_ratio_intervention",
            "allocation_ratio_control",
            "allocation_margin_percent",
            "allocation_low_stock_entries",
            "allocation_low_stock_percent",
        ],
    ),
    (
        _("Progression criteria"),
        [
            "progression_recruitment_green",
            "progression_recruitment_amber",
            "progression_consent_green",
            "progression_consent_amber",
            "progression_retention_green",
            "progression_retention_amber",
            "progression_adherence_green",
            "progression_adherence_amber",
        ],
    ),
]


class EventKind(models.TextChoices):
    """What an audit event records: things that change no record (and so have no history row) but that a monitor
    must be able to see afterwards, such as who looked at an unsealed list or whose randomisation was refused."""

    UNSEALED_LIST_VIEWED = "unsealed_list_viewed", _("Unsealed allocation list viewed")
    UNSEALED_LIST_DOWNLOADED = "unsealed_list_downloaded", _("Unsealed allocation list downloaded")
    RANDOMISATION_REFUSED = "randomisation_refused", _("Randomisation refused")
    PROFILE_CHANGED = "profile_changed", _("Own e-mail address or message language changed")
    MESSAGE_RETRIED = "message_retried", _("Failed message sent again")
    CONTACT_DETAILS_VIEWED = "contact_details_viewed", _("Contact details viewed for booking an assessment")
    REPORT_DOWNLOADED = "report_downloaded", _("Feasibility report downloaded")
    DATASET_DOWNLOADED = "dataset_downloaded", _("Analysis dataset downloaded")
    AUDIT_LOG_EXPORTED = "audit_log_exported", _("Audit log exported")
    API_CALL = "api_call", _("API call that changed or exported something")


class AuditEvent(models.Model):
    """One thing a user did or was refused that changed no research record (changes are in the history tables).

    Written by trial.events.record_event; never changed or deleted (the database refuses both on PostgreSQL).
    `details` holds codes and study IDs, never a name nor any other direct identifier."""

    at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("user"),
    )
    kind = models.CharField(_("kind"), max_length=64, db_index=True)
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="+", null=True, blank=True, verbose_name=_("site")
    )
    # What the event is about, as people name it: a study ID ("OEI-007") or a site's list ("OEI").
    subject = models.CharField(_("about"), max_length=64, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.subject}".strip()

    def get_kind_display(self) -> str:
        return str(EventKind(self.kind).label) if self.kind in EventKind.values else self.kind


class _RequestCache:
    row: TrialSettings | None = None


# Set for the length of a request (trial.apps connects Django's request signals); None outside requests (tasks,
# commands, tests calling services), where every call reads the database. A saved row empties it.
_settings_of_this_request: ContextVar[_RequestCache | None] = ContextVar("trial_settings_of_this_request", default=None)


def begin_request_cache(**kwargs) -> None:
    _settings_of_this_request.set(_RequestCache())


def end_request_cache(**kwargs) -> None:
    _settings_of_this_request.set(None)


def forget_cached_settings(**kwargs) -> None:
    cache = _settings_of_this_request.get()
    if cache is not None:
        cache.row = None
