"""Families and randomisations over the API (docs/api.md, "Families"): list and read the families one may see,
register and screen them, and randomise them, through the same selectors and services as the pages.

What a family's record holds is the same for every caller, with two exceptions, both the pages' rules: the
allocation only for those who see the arm (`randomization.selectors.arm_visible_to`), and for a blinded caller
(anyone holding the outcome-assessor role) dates, not times, of the randomisation and of the last change
(docs/trial-rules.md, "What reveals the arm"). No identifier, birth date or free text is ever in an answer.
"""

import base64
import binascii
import json
import re
import uuid
from datetime import date, datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, QuerySet
from django.db.models.functions import TruncDate
from django.http import Http404
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from api.base import ApiView
from api.models import Scope
from api.problems import PROBLEM_CONTENT_TYPE, ProblemSerializer
from families import services as family_services
from families.forms import IdentifiersForm
from families.models import (
    Consent,
    ConsentDecision,
    Criterion,
    Family,
    FamilyStatus,
    ReferralSource,
    Screening,
    StruggleArea,
)
from families.selectors import (
    ACT_ROLES,
    VIEW_ROLES,
    families_visible_to,
    get_family_for_user,
    with_last_modified,
)
from randomization import services as randomisation_services
from randomization.models import Allocation, Arm
from randomization.selectors import can_randomise, families_with_visible_arm
from trial.models import Site
from trial.roles import User, can_at_site, has_role, is_blinded, site_ids_for

PAGE_SIZE = 100
MAX_PAGE_SIZE = 500


# --- What a family's record holds ------------------------------------------------------------------------


class FamilyScreeningSerializer(serializers.Serializer):
    screened_on = serializers.DateField()
    eligible = serializers.BooleanField()
    failed_criteria = serializers.ListField(
        child=serializers.ChoiceField(choices=Criterion.choices), help_text="The criteria that failed (codes)."
    )


class FamilyConsentSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=ConsentDecision.choices)
    decided_on = serializers.DateField()


class FamilyAllocationSerializer(serializers.Serializer):
    randomisation_id = serializers.CharField(
        allow_null=True,
        help_text="The stratum and list position (OEI-R007), as on the receipt; null for a blinded caller "
        "unblinded for this family (the receipt is not theirs).",
    )
    arm = serializers.ChoiceField(choices=Arm.choices)
    arm_label = serializers.CharField()
    stratum = serializers.CharField(help_text="The site code the family was randomised in.")
    randomised_at = serializers.DateTimeField(allow_null=True, help_text="Null for a blinded caller.")


class FamilySerializer(serializers.Serializer):
    study_id = serializers.CharField()
    site = serializers.CharField(help_text="The site's code.")
    status = serializers.ChoiceField(choices=FamilyStatus.choices)
    referral_date = serializers.DateField()
    referral_source = serializers.ChoiceField(choices=ReferralSource.choices)
    registered_at = serializers.DateTimeField()
    screening = FamilyScreeningSerializer(allow_null=True, help_text="The latest screening, or null.")
    consent = FamilyConsentSerializer(allow_null=True, help_text="The latest answer to the invitation, or null.")
    randomised_on = serializers.DateField(allow_null=True)
    randomised_at = serializers.DateTimeField(allow_null=True, help_text="Null when not randomised, or blinded.")
    withdrawn_on = serializers.DateField(allow_null=True)
    modified_on = serializers.DateField(help_text="The day of the latest change (see modified_since).")
    modified_at = serializers.DateTimeField(allow_null=True, help_text="Null for a blinded caller.")
    allocation = FamilyAllocationSerializer(
        allow_null=True, help_text="Only for a caller who sees the family's arm; otherwise null."
    )


def families_for_api(families: QuerySet[Family]) -> QuerySet[Family]:
    """`families` with everything their records read, in three queries for any number of them: the families
    (with site, withdrawal, allocation and last change), their screenings, their decisions."""
    screenings = Screening.objects.only("family_id", "screened_on", "eligible", "failed_criteria", "recorded_at")
    decisions = Consent.objects.only("family_id", "decision", "decided_on", "recorded_at")
    return with_last_modified(
        families.select_related("site", "withdrawal", "allocation__site").prefetch_related(
            Prefetch("screenings", queryset=screenings.order_by("-recorded_at", "-pk"), to_attr="api_screenings"),
            Prefetch("consents", queryset=decisions.order_by("-recorded_at", "-pk"), to_attr="api_decisions"),
        )
    )


def _local_day(moment: datetime | None) -> date | None:
    return timezone.localdate(moment) if moment is not None else None


def family_record(family: Family, *, blinded: bool, arm_visible: bool) -> dict:
    """One family as the API gives it (FamilySerializer), from a family of `families_for_api`."""
    screening = next(iter(family.api_screenings), None)  # type: ignore[attr-defined]  # Prefetch's to_attr
    consent = next(iter(family.api_decisions), None)  # type: ignore[attr-defined]  # Prefetch's to_attr
    withdrawal = getattr(family, "withdrawal", None)
    allocation: Allocation | None = getattr(family, "allocation", None)
    modified_at: datetime = family.modified_at  # type: ignore[attr-defined]  # with_last_modified's annotation
    return {
        "study_id": family.study_id,
        "site": family.site.code,
        "status": family.status,
        "referral_date": family.referral_date,
        "referral_source": family.referral_source,
        "registered_at": family.registered_at,
        "screening": {
            "screened_on": screening.screened_on,
            "eligible": screening.eligible,
            "failed_criteria": [code for code in screening.failed_criteria if code in Criterion.values],
        }
        if screening is not None
        else None,
        "consent": {"decision": consent.decision, "decided_on": consent.decided_on} if consent is not None else None,
        "randomised_on": _local_day(allocation.randomised_at) if allocation is not None else None,
        "randomised_at": allocation.randomised_at if allocation is not None and not blinded else None,
        "withdrawn_on": withdrawal.withdrawn_on if withdrawal is not None else None,
        "modified_on": _local_day(modified_at),
        "modified_at": None if blinded else modified_at,
        "allocation": {
            # A blinded caller unblinded for this family learns its arm, and nothing more (as the pages).
            "randomisation_id": None if blinded else allocation.randomisation_id,
            "arm": allocation.arm,
            "arm_label": str(Arm(allocation.arm).label),
            "stratum": allocation.site.code,
            "randomised_at": None if blinded else allocation.randomised_at,
        }
        if allocation is not None and arm_visible
        else None,
    }


def family_records(user: User, families: list[Family]) -> list[dict]:
    blinded = is_blinded(user)
    visible = families_with_visible_arm(user, families)
    return [family_record(family, blinded=blinded, arm_visible=family.pk in visible) for family in families]


def family_for(user: User, study_id: str, *, act: bool = False) -> Family:
    """`families.selectors.get_family_for_user`, for a study ID from the URL (which may hold anything, even a NUL
    that PostgreSQL refuses to compare: no such family)."""
    if "\x00" in study_id:
        raise Http404
    return get_family_for_user(user, study_id, act=act)


def family_url(study_id: str) -> str:
    return reverse("api:family", args=[study_id])


# --- Listing families ------------------------------------------------------------------------------------


class FamilyFilterSerializer(serializers.Serializer):
    site = serializers.CharField(required=False, max_length=3, help_text="A site's code: only its families.")
    status = serializers.ChoiceField(choices=FamilyStatus.choices, required=False)
    modified_since = serializers.DateTimeField(
        required=False,
        help_text="ISO 8601 with its offset (2026-05-01T00:00:00+02:00): families changed at or after then. For a "
        "blinded caller, compared by the day only.",
    )
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE, default=PAGE_SIZE)
    cursor = serializers.CharField(required=False, max_length=200, help_text="From the previous page's `next`.")

    def validate(self, attrs: dict) -> dict:
        # A misspelt filter (`modifed_since`) would otherwise answer every family, as if it were not there.
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: _("This parameter is not known.") for name in unknown})
        return attrs

    def validate_site(self, code: str) -> Site:
        site = Site.objects.filter(code=code).first()
        site_ids = site_ids_for(self.context["user"], *VIEW_ROLES)
        if site is None or (site_ids is not None and site.pk not in site_ids):
            raise serializers.ValidationError(_("Choose one of your sites, by its code."))
        return site

    def validate_modified_since(self, moment: datetime) -> datetime:
        raw = str(self.initial_data.get("modified_since", ""))
        if not raw.endswith("Z") and "+" not in raw[10:] and "-" not in raw[10:]:
            raise serializers.ValidationError(
                _("Give the time with its offset, for example 2026-05-01T00:00:00+02:00.")
            )
        return moment

    def validate_cursor(self, cursor: str) -> int:
        after = decode_cursor(cursor)
        if after is None:
            raise serializers.ValidationError(_("This cursor is not valid; start again from the first page."))
        return after


def encode_cursor(after: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        return None
    after = value.get("after") if isinstance(value, dict) else None
    return after if type(after) is int and 0 <= after < 2**63 else None


class FamilyPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last one.")
    results = FamilySerializer(many=True)


# --- Registering and screening ---------------------------------------------------------------------------


def _max_length(name: str) -> int:
    # The registration form's own limits, so that the two accept the same identifiers.
    limit = getattr(IdentifiersForm.base_fields[name], "max_length", None)
    assert isinstance(limit, int), f"the registration form limits {name}"
    return limit


class IdentifiersSerializer(serializers.Serializer):
    """Direct identifiers, as the registration form takes them; written, never read back."""

    contact_name = serializers.CharField(max_length=_max_length("contact_name"))
    national_id_number = serializers.CharField(
        required=False, allow_blank=True, max_length=_max_length("national_id_number")
    )
    phone = serializers.CharField(required=False, allow_blank=True, max_length=_max_length("phone"))
    address = serializers.CharField(required=False, allow_blank=True, max_length=_max_length("address"))
    other_members = serializers.CharField(required=False, allow_blank=True, max_length=_max_length("other_members"))

    def validate(self, attrs: dict) -> family_services.Identifiers:
        # The form's validation (the national identity number's check digits, the phone's format), not a copy.
        form = IdentifiersForm(data=attrs)
        if not form.is_valid():
            errors = {field: [str(message) for message in messages] for field, messages in form.errors.items()}
            raise serializers.ValidationError(errors)
        return form.identifiers()


class RegistrationSerializer(serializers.Serializer):
    site = serializers.CharField(max_length=3, help_text="The site's code; one where you are a researcher.")
    referral_date = serializers.DateField()
    referral_source = serializers.ChoiceField(choices=ReferralSource.choices)
    parent_birth_years = serializers.ListField(child=serializers.IntegerField(), help_text="One to four parents.")
    child_birth_dates = serializers.ListField(child=serializers.DateField(), help_text="One to twelve children.")
    identifiers = IdentifiersSerializer(write_only=True)
    submission_id = serializers.UUIDField(
        required=False,
        help_text="Your own UUID for this registration: sent again (a retry), it returns the family it registered "
        "with 200, never a second family.",
    )


class ScreeningRequestSerializer(serializers.Serializer):
    screened_on = serializers.DateField()
    involved_with_child_welfare = serializers.BooleanField()
    harmful_circumstances = serializers.BooleanField()
    struggle_areas = serializers.ListField(
        child=serializers.ChoiceField(choices=StruggleArea.choices), required=False, default=list
    )
    rescreening_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        write_only=True,
        help_text="Required when the family has been screened before; ignored otherwise.",
    )
    submission_id = serializers.UUIDField(required=False, help_text="As for a registration: a retry returns 200.")


class ScreeningResultSerializer(serializers.Serializer):
    study_id = serializers.CharField()
    status = serializers.ChoiceField(choices=FamilyStatus.choices, help_text="The family's status after it.")
    screened_on = serializers.DateField()
    eligible = serializers.BooleanField()
    failed_criteria = serializers.ListField(child=serializers.ChoiceField(choices=Criterion.choices))


# The services name a household's fields as the form does; the API's request names them so.
_SERVICE_FIELDS = {
    "parents": "parent_birth_years",
    "children": "child_birth_dates",
    **{name: f"identifiers.{name}" for name in IdentifiersForm.base_fields},
}


def _with_api_fields(error: ValidationError) -> ValidationError:
    """A service's ValidationError with its fields named as in the request (a refusal's code, such as the site's
    `not_recruiting`, makes it a 409 in api/problems.py whatever field it names)."""
    if not hasattr(error, "error_dict"):
        return error
    return ValidationError({_SERVICE_FIELDS.get(field, field): items for field, items in error.error_dict.items()})


# --- Randomising -----------------------------------------------------------------------------------------


class RandomisationRequestSerializer(serializers.Serializer):
    study_id = serializers.CharField(max_length=12)
    site = serializers.CharField(
        max_length=3, help_text="The family's site (the stratum), as you confirm it on the randomise page."
    )


class RandomisationSerializer(serializers.Serializer):
    randomisation_id = serializers.CharField(help_text="The stratum and list position, as on the receipt: OEI-R007.")
    study_id = serializers.CharField()
    site = serializers.CharField(help_text="The family's site's code.")
    stratum = serializers.CharField(help_text="The site code the family was randomised in.")
    arm = serializers.ChoiceField(choices=Arm.choices, allow_null=True, help_text="Null unless you see the arm.")
    arm_label = serializers.CharField(allow_null=True)
    randomised_at = serializers.DateTimeField()
    randomised_by = serializers.CharField(help_text="The username of who randomised the family.")


def randomisation_record(user: User, allocation: Allocation) -> dict:
    family = allocation.family
    shown = family.pk in families_with_visible_arm(user, [family]) and not is_blinded(user)
    return {
        "randomisation_id": allocation.randomisation_id,
        "study_id": family.study_id,
        "site": family.site.code,
        "stratum": allocation.site.code,
        "arm": allocation.arm if shown else None,
        "arm_label": str(Arm(allocation.arm).label) if shown else None,
        "randomised_at": allocation.randomised_at,
        "randomised_by": allocation.randomised_by.get_username(),
    }


# --- The views -------------------------------------------------------------------------------------------

STUDY_ID = OpenApiParameter("study_id", str, OpenApiParameter.PATH, description="The family's study ID (OEI-001).")


class FamiliesView(ApiView):
    """The families you may see (researchers and outcome assessors: their sites' families; the principal
    investigator: every family), and registering a new one (researchers, at their sites)."""

    def initial(self, request, *args, **kwargs):
        # Reading needs the read scope; registering, the write scope (checked by TokenScope in super().initial).
        self.required_scope = Scope.WRITE if request.method == "POST" else Scope.READ
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="families_list",
        summary="List families",
        description="The families you may see, in a stable order (oldest registration first), a page at a time: "
        "follow `next` until it is null. Filter by site (code), status and `modified_since` (the latest change "
        "of the family, its screening, its answer to the invitation, its randomisation or its withdrawal). "
        "The arm (`allocation`) is given only to those who may see it; a blinded caller (an outcome assessor) "
        "gets the day, not the time, of the randomisation and of the latest change.",
        parameters=[FamilyFilterSerializer],
        responses={
            200: FamilyPageSerializer,
            (400, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                ProblemSerializer, description="A filter is not valid: the problem's `errors` name it."
            ),
        },
    )
    def get(self, request):
        if not has_role(request.user, *VIEW_ROLES):
            raise PermissionDenied
        # A plain dict, not the QueryDict: DRF reads an empty `status=` in a QueryDict as "not given"; here it is
        # what it is, a value that is not valid (the schema says so too).
        query = request.query_params.dict()
        if "modified_since" in query:
            # An offset's "+" sent unencoded arrives as a space (curl "...T00:00:00+02:00"): read it as meant.
            query["modified_since"] = re.sub(r" (\d\d(:?\d\d)?)$", r"+\1", query["modified_since"])
        filters = FamilyFilterSerializer(data=query, context={"user": request.user})
        filters.is_valid(raise_exception=True)
        chosen = filters.validated_data
        blinded = is_blinded(request.user)
        families = families_for_api(families_visible_to(request.user))
        if "site" in chosen:
            families = families.filter(site=chosen["site"])
        if "status" in chosen:
            families = families.filter(status=chosen["status"])
        if "modified_since" in chosen:
            since = chosen["modified_since"]
            if blinded:
                # By the day only: times would let a blinded caller find when (in what order) families were
                # randomised, as the family list's order does not (docs/trial-rules.md).
                families = families.annotate(
                    modified_day=TruncDate("modified_at", tzinfo=timezone.get_current_timezone())
                ).filter(modified_day__gte=timezone.localdate(since))
            else:
                families = families.filter(modified_at__gte=since)  # type: ignore[misc]  # an annotation
        if "cursor" in chosen:
            families = families.filter(pk__gt=chosen["cursor"])
        size = chosen["page_size"]
        page = list(families.order_by("pk")[: size + 1])
        next_url = None
        if len(page) > size:
            page = page[:size]
            query = request.query_params.copy()
            query["cursor"] = encode_cursor(page[-1].pk)
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        return Response(FamilyPageSerializer({"next": next_url, "results": family_records(request.user, page)}).data)

    @extend_schema(
        operation_id="families_register",
        summary="Register a family",
        description="Register a referred family at one of your sites, with the registration form's rules. The "
        "identifiers are stored encrypted and never returned. Send your own `submission_id` so that a retry "
        "returns the family already registered (200) instead of a second one (201). A site that is not recruiting "
        "refuses with 409.",
        request=RegistrationSerializer,
        responses={201: FamilySerializer, 200: FamilySerializer},
    )
    def post(self, request):
        body = RegistrationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        site = Site.objects.filter(code=data["site"]).first()
        if site is None:
            raise ValidationError({"site": _("No site has this code.")})
        self.audit_site = site
        if not can_at_site(request.user, site.pk, *ACT_ROLES):
            raise PermissionDenied
        token = data.get("submission_id") or uuid.uuid4()
        # A retry finds its family; two retries at the same moment both answer 201, naming the same family.
        registered_before = Family.objects.filter(registration_token=token).exists()
        try:
            family = family_services.family_register(
                site=site,
                referral_date=data["referral_date"],
                referral_source=data["referral_source"],
                parent_birth_years=data["parent_birth_years"],
                child_birth_dates=data["child_birth_dates"],
                identifiers=data["identifiers"],
                registered_by=request.user,
                token=token,
            )
        except ValidationError as error:
            raise _with_api_fields(error) from None
        if family.site_id != site.pk:
            # The identifier of another registration (at another site): never its family.
            raise ValidationError({"submission_id": _("This submission_id was used for another registration.")})
        self.audit_subject = family.study_id
        record = family_records(request.user, list(families_for_api(Family.objects.filter(pk=family.pk))))[0]
        if registered_before:
            return Response(FamilySerializer(record).data, status=status.HTTP_200_OK)
        return Response(
            FamilySerializer(record).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": family_url(family.study_id)},
        )


class FamilyView(ApiView):
    """One family, as in the list."""

    @extend_schema(
        operation_id="families_read",
        summary="Read a family",
        description="One family you may see, as in the list (404 for a family that is not yours to see).",
        parameters=[STUDY_ID],
        responses=FamilySerializer,
    )
    def get(self, request, study_id: str):
        family = family_for(request.user, study_id)
        family = families_for_api(Family.objects.filter(pk=family.pk)).get()
        return Response(FamilySerializer(family_records(request.user, [family])[0]).data)


class FamilyScreeningsView(ApiView):
    """Screening a family against the trial's criteria."""

    required_scope = Scope.WRITE

    @extend_schema(
        operation_id="families_screen",
        summary="Screen a family",
        description="Record a screening of a family of your site against the trial's criteria (as the screening "
        "form). A family screened before needs `rescreening_reason`. The answer says whether it is eligible and "
        "which criteria failed; 409 when the family can no longer be screened. A retry with the same "
        "`submission_id` returns the first screening with 200.",
        parameters=[STUDY_ID],
        request=ScreeningRequestSerializer,
        responses={201: ScreeningResultSerializer, 200: ScreeningResultSerializer},
    )
    def post(self, request, study_id: str):
        family = family_for(request.user, study_id, act=True)
        self.audit_subject, self.audit_site = family.study_id, family.site
        body = ScreeningRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        token = data.get("submission_id") or uuid.uuid4()
        screened_before = Screening.objects.filter(submission_token=token).exists()
        screening = family_services.family_screen(
            family=family,
            screened_on=data["screened_on"],
            involved_with_child_welfare=data["involved_with_child_welfare"],
            harmful_circumstances=data["harmful_circumstances"],
            struggle_areas=data["struggle_areas"],
            rescreening_reason=data.get("rescreening_reason", ""),
            screened_by=request.user,
            token=token,
        )
        family.refresh_from_db(fields=["status"])
        result = ScreeningResultSerializer(
            {
                "study_id": family.study_id,
                "status": family.status,
                "screened_on": screening.screened_on,
                "eligible": screening.eligible,
                "failed_criteria": screening.failed_criteria,
            }
        ).data
        if screened_before:
            return Response(result, status=status.HTTP_200_OK)
        return Response(result, status=status.HTTP_201_CREATED, headers={"Location": family_url(family.study_id)})


class RandomisationsView(ApiView):
    """Randomising a family."""

    required_scope = Scope.RANDOMISE

    @extend_schema(
        operation_id="randomisations_create",
        summary="Randomise a family",
        description="Randomise a consented family of your site, confirming its site (the stratum) as the randomise "
        "page asks. The allocation is the next entry of the site's sealed list. Idempotent: a family already "
        "randomised returns its allocation with 200 (a retry, a colleague), a new allocation answers 201. A list "
        "used up, stopped or unsealed, no list, a family not consented or of another site, or a condition not met "
        "(a baseline not recorded) is a 409 problem that says why.",
        request=RandomisationRequestSerializer,
        responses={
            201: RandomisationSerializer,
            200: OpenApiResponse(RandomisationSerializer, description="The family was randomised already."),
        },
    )
    def post(self, request):
        body = RandomisationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        family = get_family_for_user(request.user, body.validated_data["study_id"], act=True)
        self.audit_subject, self.audit_site = family.study_id, family.site
        if not can_randomise(request.user, family):
            raise PermissionDenied
        site = Site.objects.filter(code=body.validated_data["site"]).first()
        if site is None:
            raise ValidationError({"site": _("No site has this code.")})
        result = randomisation_services.family_randomise(family=family, confirmed_site=site, randomised_by=request.user)
        allocation = Allocation.objects.select_related("family__site", "site", "randomised_by").get(
            pk=result.allocation.pk
        )
        record = RandomisationSerializer(randomisation_record(request.user, allocation)).data
        if not result.created:
            return Response(record, status=status.HTTP_200_OK)
        return Response(record, status=status.HTTP_201_CREATED, headers={"Location": family_url(family.study_id)})


urlpatterns: list[URLPattern] = [
    path("families/", FamiliesView.as_view(), name="families"),
    path("families/<str:study_id>/", FamilyView.as_view(), name="family"),
    path("families/<str:study_id>/screenings/", FamilyScreeningsView.as_view(), name="family-screenings"),
    path("randomisations/", RandomisationsView.as_view(), name="randomisations"),
]
