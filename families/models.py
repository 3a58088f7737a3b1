"""A family's way into the trial: referral, household, screening, consent or decline, withdrawal.

Research records are never deleted: foreign keys protect them, the admin refuses deletion, and every
change is kept by django-simple-history, which the family's timeline reads.
"""

from django.conf import settings
from django.db import models
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from trial.encryption import EncryptedTextField
from trial.models import Site


class FamilyStatus(models.TextChoices):
    REFERRED = "referred", _("Referred")
    ELIGIBLE = "eligible", _("Screened eligible")
    INELIGIBLE = "ineligible", _("Screened not eligible")
    CONSENTED = "consented", _("Consented")
    DECLINED = "declined", _("Declined")
    RANDOMISED = "randomised", _("Randomised")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class ReferralSource(models.TextChoices):
    CHILD_WELFARE_CASEWORKER = "child_welfare_caseworker", _("Child welfare caseworker")
    CHILD_WELFARE_MEASURE = "child_welfare_measure", _("Child welfare assistance measure")
    HEALTH_SERVICE = "health_service", _("Health service")
    SCHOOL_OR_KINDERGARTEN = "school_or_kindergarten", _("School or kindergarten")
    SELF_REFERRAL = "self_referral", _("The family itself")
    OTHER = "other", _("Other")


class Family(models.Model):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="families", verbose_name=_("site"))
    number = models.PositiveIntegerField(_("number at site"), editable=False)
    study_id = models.CharField(_("study ID"), max_length=12, unique=True, editable=False)
    referral_date = models.DateField(_("referral date"))
    referral_source = models.CharField(_("referral source"), max_length=32, choices=ReferralSource.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=FamilyStatus.choices, default=FamilyStatus.REFERRED, db_index=True
    )
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("registered by")
    )
    registered_at = models.DateTimeField(_("registered at"), auto_now_add=True)
    # The registration form's one-time token: a resubmitted (double-clicked) form finds this family
    # instead of registering a second one.
    registration_token = models.UUIDField(unique=True, editable=False)
    history = HistoricalRecords(excluded_fields=["registration_token"])

    class Meta:
        ordering = ["site__code", "number"]
        verbose_name = _("family")
        verbose_name_plural = _("families")
        constraints = [
            models.UniqueConstraint(fields=["site", "number"], name="family_number_unique_per_site"),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="family_number_positive"),
            models.CheckConstraint(condition=models.Q(status__in=FamilyStatus.values), name="family_status_known"),
        ]

    def __str__(self) -> str:
        return self.study_id

    @cached_property
    def consent(self) -> "Consent | None":
        """The family's answer to the invitation: its latest decision, the one its status follows."""
        return self.consents.select_related("obtained_by").order_by("-recorded_at", "-pk").first()

    @staticmethod
    def format_study_id(site_code: str, number: int) -> str:
        return f"{site_code}-{number:03d}"


class Parent(models.Model):
    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="parents", verbose_name=_("family"))
    birth_year = models.PositiveSmallIntegerField(_("birth year"))
    history = HistoricalRecords()

    class Meta:
        ordering = ["pk"]
        verbose_name = _("parent")
        verbose_name_plural = _("parents")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(birth_year__gte=1900, birth_year__lte=2100), name="parent_birth_year_plausible"
            ),
        ]

    def __str__(self) -> str:
        return str(_("Parent born %(year)s") % {"year": self.birth_year})


class Child(models.Model):
    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="children", verbose_name=_("family"))
    birth_date = models.DateField(_("birth date"))
    history = HistoricalRecords()

    class Meta:
        ordering = ["birth_date", "pk"]
        verbose_name = _("child")
        verbose_name_plural = _("children")

    def __str__(self) -> str:
        return str(_("Child born %(date)s") % {"date": self.birth_date.isoformat()})


class FamilyIdentity(models.Model):
    """Direct identifiers, apart from research data and encrypted at rest.

    Shown only to researchers of the family's site; never in lists, logs, exports or admin list pages.
    """

    family = models.OneToOneField(Family, on_delete=models.PROTECT, related_name="identity", verbose_name=_("family"))
    contact_name = EncryptedTextField(_("parent's full name"))
    national_id_number = EncryptedTextField(_("national identity number"), blank=True)
    phone = EncryptedTextField(_("phone"), blank=True)
    address = EncryptedTextField(_("address"), blank=True)
    other_members = EncryptedTextField(
        _("other household members"), blank=True, help_text=_("Names of the other parents and the children.")
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("direct identifiers")
        verbose_name_plural = _("direct identifiers")

    def __str__(self) -> str:
        # Never the name: this string can end up in logs, admin breadcrumbs and error pages.
        return str(_("Identifiers of %(study_id)s") % {"study_id": self.family.study_id})


class Criterion(models.TextChoices):
    """The registry's inclusion criteria; a failed screening stores which of these failed."""

    PARENT_AGE = "parent_age", _("No parent is old enough")
    CHILD_AGE = "child_age", _("No child is young enough")
    CHILD_WELFARE = "child_welfare", _("Not involved with child welfare services")
    HARMFUL_CIRCUMSTANCES = "harmful_circumstances", _("Children not living under potentially harmful circumstances")
    STRUGGLE_AREAS = "struggle_areas", _("Parents struggle in too few areas")


class StruggleArea(models.TextChoices):
    EMPLOYMENT = "employment", _("Employment")
    FINANCES = "finances", _("Poverty or finances")
    SUBSTANCE_USE = "substance_use", _("Drug or alcohol misuse")
    MENTAL_HEALTH = "mental_health", _("Mental health")
    HOUSING = "housing", _("Housing")
    PHYSICAL_HEALTH = "physical_health", _("Physical health")
    SOCIAL_ISOLATION = "social_isolation", _("Social isolation")
    VIOLENCE = "violence", _("Violence in close relationships")


class Screening(models.Model):
    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="screenings", verbose_name=_("family"))
    screened_on = models.DateField(_("screening date"))
    screened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("screened by")
    )
    involved_with_child_welfare = models.BooleanField(_("involved with child welfare services"))
    harmful_circumstances = models.BooleanField(_("children live under potentially harmful circumstances"))
    struggle_areas = models.JSONField(_("areas the parents struggle in"), default=list)
    eligible = models.BooleanField(_("eligible"))
    failed_criteria = models.JSONField(_("failed criteria"), default=list)
    # The thresholds in force when this screening was done, so that it can be re-read after a
    # data manager changes the trial settings.
    thresholds = models.JSONField(_("thresholds applied"), default=dict)
    rescreening_reason = models.TextField(_("reason for screening again"), blank=True)
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    submission_token = models.UUIDField(unique=True, editable=False)
    history = HistoricalRecords(excluded_fields=["submission_token"])

    class Meta:
        ordering = ["recorded_at", "pk"]
        verbose_name = _("screening")
        verbose_name_plural = _("screenings")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(eligible=True, failed_criteria=[]) | models.Q(eligible=False),
                name="screening_eligible_has_no_failed_criteria",
            ),
        ]

    def __str__(self) -> str:
        return str(_("Screening of %(study_id)s") % {"study_id": self.family.study_id})

    def failed_criteria_labels(self) -> list[str]:
        return [str(Criterion(code).label) for code in self.failed_criteria if code in Criterion.values]


class ConsentDecision(models.TextChoices):
    CONSENTED = "consented", _("Consented")
    DECLINED = "declined", _("Declined")


class DeclineReason(models.TextChoices):
    NOT_INTERESTED = "not_interested", _("Not interested")
    TOO_BURDENSOME = "too_burdensome", _("Too much of a burden")
    RANDOMISATION = "randomisation", _("Does not want to be randomised")
    PRIVACY = "privacy", _("Concerned about privacy")
    OTHER = "other", _("Other")


class Consent(models.Model):
    """One answer of the family to the invitation: consent or decline.

    A family that declined may answer again later, with a reason: the new decision names the one it replaces, so
    a family's decisions form one line, every one kept, and the latest decides the family's status. A family
    consents at most once (after consent, a change of mind is a withdrawal)."""

    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="consents", verbose_name=_("family"))
    decision = models.CharField(_("decision"), max_length=16, choices=ConsentDecision.choices)
    decided_on = models.DateField(_("date"))
    form_version = models.CharField(_("consent form version"), max_length=32, blank=True)
    obtained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("consent obtained by"),
    )
    decline_reason = models.CharField(
        _("reason for declining"), max_length=32, choices=DeclineReason.choices, blank=True
    )
    decline_details = models.TextField(_("details"), blank=True)
    # One-to-one: two decisions can never both follow the same one (two researchers answering at once).
    replaces = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        related_name="replaced_by",
        null=True,
        blank=True,
        verbose_name=_("replaces the decision"),
    )
    new_decision_reason = models.TextField(_("reason for the new decision"), blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("recorded by")
    )
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    submission_token = models.UUIDField(unique=True, editable=False)
    history = HistoricalRecords(excluded_fields=["submission_token"])

    class Meta:
        ordering = ["recorded_at", "pk"]
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [
            models.UniqueConstraint(
                fields=["family"], condition=models.Q(decision="consented"), name="consent_once_per_family"
            ),
            models.UniqueConstraint(
                fields=["family"], condition=models.Q(replaces__isnull=True), name="consent_one_first_decision"
            ),
            models.CheckConstraint(
                condition=models.Q(replaces__isnull=True, new_decision_reason="")
                | (models.Q(replaces__isnull=False) & ~models.Q(new_decision_reason="")),
                name="consent_new_decision_has_reason",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(decision="consented", decline_reason="", obtained_by__isnull=False)
                    & ~models.Q(form_version="")
                )
                | (models.Q(decision="declined", form_version="") & ~models.Q(decline_reason="")),
                name="consent_fields_match_decision",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.family.study_id}: {self.get_decision_display()}"


class WithdrawalReason(models.TextChoices):
    FAMILY_REQUEST = "family_request", _("The family asked to withdraw")
    MOVED_AWAY = "moved_away", _("Moved away")
    LOST_CONTACT = "lost_contact", _("Lost contact")
    CASE_CLOSED = "case_closed", _("Child welfare case closed")
    OTHER = "other", _("Other")


class Withdrawal(models.Model):
    family = models.OneToOneField(Family, on_delete=models.PROTECT, related_name="withdrawal", verbose_name=_("family"))
    withdrawn_on = models.DateField(_("withdrawal date"))
    reason = models.CharField(_("reason"), max_length=32, choices=WithdrawalReason.choices)
    details = models.TextField(_("details"), blank=True)
    data_may_be_kept = models.BooleanField(_("data collected so far may be kept"))
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("recorded by")
    )
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    submission_token = models.UUIDField(unique=True, editable=False)
    history = HistoricalRecords(excluded_fields=["submission_token"])

    class Meta:
        verbose_name = _("withdrawal")
        verbose_name_plural = _("withdrawals")

    def __str__(self) -> str:
        return str(_("Withdrawal of %(study_id)s") % {"study_id": self.family.study_id})
