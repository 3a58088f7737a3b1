"""The Family Partner's work: caseloads, intervention periods and the contact log.

Two counts that protect the trial live in the database itself, kept by triggers (migration 0002) so that no
code path can get them wrong: a partner's number of active families (never above their capacity) and a
family's hours per day (never above 24). Nothing here is deleted: corrections are audited changes.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from families.models import Family
from trial.encryption import EncryptedTextField
from trial.models import Site
from visits.weeks import QUARTERS_PER_HOUR

MAX_CONTACT_QUARTERS = 12 * QUARTERS_PER_HOUR  # one contact: 0.25 to 12 hours
MAX_DAY_QUARTERS = 24 * QUARTERS_PER_HOUR  # one family's contacts on one day

# How the database refuses what the services refuse first (its constraints' names and its triggers' messages,
# migrations 0002 and 0003), so that a refusal that reaches the database still gets the service's own words.
CAPACITY_CONSTRAINT = "partner_within_capacity"
ONE_ACTIVE_ASSIGNMENT_CONSTRAINT = "assignment_one_active_per_family"
REFUSED_NOT_INTERVENTION = "only a family randomised to the intervention gets a Family Partner"
REFUSED_NOT_RANDOMISED = "only a randomised family that has not withdrawn gets a Family Partner"


class PartnerStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    ON_LEAVE = "on_leave", _("On leave")


class PartnerProfileManager(models.Manager["PartnerProfile"]):
    def get_queryset(self) -> models.QuerySet["PartnerProfile"]:
        # A partner is always shown by the user's name.
        return super().get_queryset().select_related("user")


class PartnerProfile(models.Model):
    """A Family Partner at a site: how many families they can take at a time, and whether they take any now."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="partner_profile", verbose_name=_("user")
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="partners", verbose_name=_("site"))
    # At most the trial's limit, and never below the families the partner has: services.partner_profile_save.
    capacity = models.PositiveSmallIntegerField(
        _("capacity"), help_text=_("Families at a time; at most the trial's limit (the trial settings).")
    )
    status = models.CharField(_("status"), max_length=16, choices=PartnerStatus.choices, default=PartnerStatus.ACTIVE)
    # Kept by the database (triggers on Assignment): the partner's assignments that have not ended.
    active_families = models.PositiveSmallIntegerField(_("active families"), default=0, editable=False)
    history = HistoricalRecords(excluded_fields=["active_families"])
    objects = PartnerProfileManager()

    class Meta:
        ordering = ["site__code", "user__first_name", "user__last_name", "user__username"]
        verbose_name = _("Family Partner")
        verbose_name_plural = _("Family Partners")
        constraints = [
            models.CheckConstraint(condition=models.Q(capacity__gte=1), name="partner_capacity_positive"),
            models.CheckConstraint(
                condition=models.Q(active_families__gte=0) & models.Q(active_families__lte=models.F("capacity")),
                name=CAPACITY_CONSTRAINT,
            ),
            models.CheckConstraint(condition=models.Q(status__in=PartnerStatus.values), name="partner_status_known"),
        ]

    def __str__(self) -> str:
        return self.user.get_full_name() or self.user.get_username()

    def save(self, *args, **kwargs) -> None:
        # active_families belongs to the database's triggers: saving a profile read before an assignment
        # (the admin's form, say) must not write its stale count back.
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name for f in self._meta.concrete_fields if not f.primary_key and f.name != "active_families"
            ]
        super().save(*args, **kwargs)

    @property
    def free_slots(self) -> int:
        return max(self.capacity - self.active_families, 0)

    @property
    def takes_families(self) -> bool:
        return self.status == PartnerStatus.ACTIVE and self.free_slots > 0


class Assignment(models.Model):
    """A family's Family Partner from one date until the assignment ends (reassignment or the intervention's end)."""

    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="assignments", verbose_name=_("family"))
    partner = models.ForeignKey(
        PartnerProfile, on_delete=models.PROTECT, related_name="assignments", verbose_name=_("Family Partner")
    )
    started_on = models.DateField(_("assigned from"))
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("assigned by")
    )
    ended_on = models.DateField(_("assigned until"), null=True, blank=True)
    end_reason = models.TextField(_("reason the assignment ended"), blank=True)
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["started_on", "pk"]
        verbose_name = _("Family Partner assignment")
        verbose_name_plural = _("Family Partner assignments")
        constraints = [
            # One Family Partner at a time per family.
            models.UniqueConstraint(
                fields=["family"], condition=models.Q(ended_on__isnull=True), name=ONE_ACTIVE_ASSIGNMENT_CONSTRAINT
            ),
            models.CheckConstraint(
                condition=models.Q(ended_on__isnull=True) | models.Q(ended_on__gte=models.F("started_on")),
                name="assignment_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return str(_("Family Partner of %(study_id)s") % {"study_id": self.family.study_id})


class EndReason(models.TextChoices):
    COMPLETED = "completed", _("Completed as planned")
    GOALS_REACHED = "goals_reached", _("The family's goals were reached")
    FAMILY_ENDED = "family_ended", _("The family no longer wanted the intervention")
    WITHDRAWN = "withdrawn", _("The family withdrew from the trial")
    MOVED_AWAY = "moved_away", _("Moved away")
    CASE_CLOSED = "case_closed", _("Child welfare case closed")
    PLACEMENT = "placement", _("The children were placed outside the home")
    EXTENDED = "extended", _("Extended beyond the maximum by agreement")
    OTHER = "other", _("Other")


class InterventionPeriod(models.Model):
    """A family's intervention: from its first Family Partner assignment until it is ended with a reason."""

    family = models.OneToOneField(
        Family, on_delete=models.PROTECT, related_name="intervention", verbose_name=_("family")
    )
    started_on = models.DateField(_("intervention started"))
    planned_end_on = models.DateField(_("planned end"))
    ended_on = models.DateField(_("intervention ended"), null=True, blank=True)
    end_reason = models.CharField(_("reason it ended"), max_length=32, choices=EndReason.choices, blank=True)
    end_details = models.TextField(_("details"), blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("ended by"),
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("intervention period")
        verbose_name_plural = _("intervention periods")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ended_on__isnull=True, end_reason="", ended_by__isnull=True)
                | (
                    models.Q(ended_on__isnull=False, ended_by__isnull=False, ended_on__gte=models.F("started_on"))
                    & models.Q(end_reason__in=EndReason.values)
                ),
                name="intervention_end_has_date_reason_and_person",
            ),
            models.CheckConstraint(
                condition=models.Q(planned_end_on__gt=models.F("started_on")), name="intervention_planned_after_start"
            ),
        ]

    def __str__(self) -> str:
        return str(_("Intervention of %(study_id)s") % {"study_id": self.family.study_id})

    @property
    def is_running(self) -> bool:
        return self.ended_on is None


class ContactKind(models.TextChoices):
    HOME_VISIT = "home_visit", _("Home visit")
    PHONE_VIDEO = "phone_video", _("Phone or video")
    SERVICES_MEETING = "services_meeting", _("Meeting with services")
    ACCOMPANYING = "accompanying", _("Accompanying to an appointment")
    OTHER = "other", _("Other")


class Element(models.TextChoices):
    """The Family Partner model's five elements (docs/trial-rules.md)."""

    HOME_VISITATION = "home_visitation", _("Home visitation")
    COORDINATION = "coordination", _("Coordination of services")
    ECOLOGICAL = "ecological", _("Ecological perspective")
    PARENTAL_GUIDANCE = "parental_guidance", _("Parental guidance")
    THERAPEUTIC_RELATIONSHIP = "therapeutic_relationship", _("Therapeutic relationship")


class Contact(models.Model):
    """One home visit or other contact, logged by the family's Family Partner.

    The notes are encrypted at rest, shown only to their author and the site's researchers, and never exported.
    """

    # No index of its own: contact_family_date leads with the family.
    family = models.ForeignKey(
        Family, on_delete=models.PROTECT, related_name="contacts", verbose_name=_("family"), db_index=False
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("Family Partner")
    )
    contact_date = models.DateField(_("date"))
    duration_quarters = models.PositiveSmallIntegerField(_("duration (quarter-hours)"))
    kind = models.CharField(_("kind"), max_length=32, choices=ContactKind.choices)
    elements = models.JSONField(_("elements of the model"), default=list)
    notes = EncryptedTextField(_("notes"), blank=True)
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    submission_token = models.UUIDField(unique=True, editable=False)
    # A contact logged by mistake is voided, not deleted: kept with its history, out of every sum (the database's
    # daily totals count only contacts that are not voided), and never changed again (a trigger refuses it).
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("voided by"),
        db_index=False,  # users are never deleted; no index to keep up on every contact logged
    )
    void_reason = models.TextField(_("why it was voided"), blank=True, default="", db_default="")
    history = HistoricalRecords(excluded_fields=["submission_token"])

    class Meta:
        ordering = ["-contact_date", "-pk"]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        indexes = [models.Index(fields=["family", "contact_date"], name="contact_family_date")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(duration_quarters__gte=1, duration_quarters__lte=MAX_CONTACT_QUARTERS),
                name="contact_duration_quarter_hours",
            ),
            models.CheckConstraint(condition=models.Q(kind__in=ContactKind.values), name="contact_kind_known"),
            models.CheckConstraint(
                condition=models.Q(voided_at__isnull=True, voided_by__isnull=True, void_reason="")
                | (models.Q(voided_at__isnull=False, voided_by__isnull=False) & ~models.Q(void_reason="")),
                name="contact_void_has_time_person_and_reason",
            ),
        ]

    def __str__(self) -> str:
        return str(_("Contact with %(study_id)s") % {"study_id": self.family.study_id})

    def element_labels(self) -> list[str]:
        return [str(Element(code).label) for code in self.elements if code in Element.values]

    @property
    def is_voided(self) -> bool:
        return self.voided_at is not None


class ContactDay(models.Model):
    """A family's contact time on one day, kept by the database (triggers on Contact): at most 24 hours.

    The week tables read these daily totals rather than every contact."""

    # No index of its own: the unique (family, day) leads with the family.
    family = models.ForeignKey(
        Family, on_delete=models.PROTECT, related_name="+", verbose_name=_("family"), db_index=False
    )
    day = models.DateField(_("date"))
    quarters = models.PositiveIntegerField(_("quarter-hours"), default=0)

    class Meta:
        verbose_name = _("contact time per day")
        verbose_name_plural = _("contact time per day")
        constraints = [
            models.UniqueConstraint(fields=["family", "day"], name="contactday_one_per_family_and_day"),
            models.CheckConstraint(
                condition=models.Q(quarters__gte=0, quarters__lte=MAX_DAY_QUARTERS), name="contactday_at_most_24_hours"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.family_id} {self.day}"
