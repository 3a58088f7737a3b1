"""A family's follow-up assessments through the API: `GET /api/v1/families/{study_id}/assessments/` (the schedule
as the follow-up pages show it) and `POST /api/v1/families/{study_id}/assessments/{months}/` (record or correct one,
as the assessment page does: the same form, the same service).

Who: the pages' rule (`followups.selectors`): the site's outcome assessors record; its researchers and the PI read;
anyone else gets 404. Nothing here reads the arm, the assessor's guess or any free text; a blinded caller (every
assessor) is sent nothing that reveals the arm, and the guess they record is never read back.
"""

import uuid

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from api.base import ApiView
from api.models import Scope
from followups import services
from followups.forms import RecordForm
from followups.models import Assessment, AssessmentMode, AssessmentStatus, MissedReason
from followups.selectors import can_record, family_schedule, get_family_for_follow_ups, state_of, time_point_label
from followups.states import State
from trial.dates import today

STUDY_ID = OpenApiParameter("study_id", str, OpenApiParameter.PATH, description="The family's study ID, e.g. OEI-007.")
MONTHS = OpenApiParameter(
    "months", int, OpenApiParameter.PATH, description="The time point in months after randomisation; 0 is baseline."
)


def _choices(name: str) -> list[tuple[str, str]]:
    """The choices of the assessment page's form field `name`: the API takes exactly what the page offers."""
    field = RecordForm.base_fields[name]
    return [(str(value), str(label)) for value, label in field.choices if value]  # type: ignore[attr-defined]


class AssessmentSerializer(serializers.Serializer):
    months = serializers.IntegerField(help_text="Months after randomisation; 0 is baseline.")
    label = serializers.CharField(help_text='"baseline" or "3 months", in the language asked for (Accept-Language).')  # type: ignore[assignment]  # a field named label
    state = serializers.ChoiceField(
        choices=State.choices, help_text="Where the assessment stands today (as the grid shows it)."
    )
    outcome = serializers.ChoiceField(
        choices=AssessmentStatus.choices, help_text="What is recorded: scheduled until it is recorded or stopped."
    )
    opens_on = serializers.DateField(help_text="The first day of the window.")
    target_on = serializers.DateField()
    closes_on = serializers.DateField(allow_null=True, help_text="The last day of the window; null: no end yet.")
    booked_on = serializers.DateField(allow_null=True)
    done_on = serializers.DateField(
        allow_null=True, help_text="The day it was done, or found missed or refused; null until recorded."
    )
    recorded_on = serializers.DateField(allow_null=True, help_text="The day it was recorded (the day only).")
    outside_window = serializers.BooleanField()
    mode = serializers.ChoiceField(
        choices=[("", ""), *AssessmentMode.choices], help_text="How it was done; empty unless completed or partly."
    )
    questionnaires = serializers.ListField(child=serializers.CharField())


class ScheduleSerializer(serializers.Serializer):
    study_id = serializers.CharField()
    site = serializers.CharField(help_text="The site's code.")
    may_record = serializers.BooleanField(help_text="Whether this caller may record the family's assessments.")
    assessments = AssessmentSerializer(many=True)


class RecordSerializer(serializers.Serializer):
    """What the assessor records: the assessment page's form, field by field."""

    status = serializers.ChoiceField(choices=_choices("status"), help_text="What happened.")
    done_on = serializers.DateField(help_text="The day it was done, or found missed or refused (YYYY-MM-DD).")
    mode = serializers.ChoiceField(
        choices=_choices("mode"), required=False, allow_blank=True, help_text="For a completed or partly one."
    )
    questionnaires = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=50, help_text="The ones collected."
    )
    reason = serializers.ChoiceField(
        choices=MissedReason.choices, required=False, allow_blank=True, help_text="Why it was missed."
    )
    details = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="For a partly completed one (what was not collected, and why), or a miss for another reason. "
        "Kept, never sent back.",
    )
    arm_guess = serializers.ChoiceField(
        choices=_choices("arm_guess"),
        required=False,
        allow_blank=True,
        help_text="After baseline: which arm you think the family is in (partner: with extra home-visiting "
        "support; usual: usual services only; unsure). Kept apart and never sent back.",
    )
    confirm_outside_window = serializers.BooleanField(
        required=False, default=False, help_text="Record a date outside the window anyway, flagged."
    )
    correction_reason = serializers.CharField(
        required=False, allow_blank=True, max_length=500, help_text="Required to correct a recorded assessment."
    )
    submission_id = serializers.UUIDField(
        required=False,
        help_text="Your own id of this submission: sent again (a retry), it returns the same record with 200 "
        "instead of recording twice.",
    )


def assessment_body(assessment: Assessment, *, state: State) -> dict:
    return {
        "months": assessment.months,
        "label": time_point_label(assessment.months),
        "state": state.value,
        "outcome": assessment.status,
        "opens_on": assessment.opens_on,
        "target_on": assessment.target_on,
        "closes_on": assessment.closes_on,
        "booked_on": assessment.booked_on,
        "done_on": assessment.done_on,
        "recorded_on": today(assessment.recorded_at) if assessment.recorded_at else None,
        "outside_window": assessment.outside_window,
        "mode": assessment.mode,
        "questionnaires": [str(name) for name in assessment.questionnaires],
    }


class FamilyAssessmentsView(ApiView):
    """A family's follow-up schedule, as the follow-up pages show it: each time point's window, booking, state and
    what was recorded (no free text, no guess). For the outcome assessors and researchers of the family's site and
    the principal investigator; 404 for anyone else."""

    @extend_schema(
        operation_id="family_assessments",
        summary="A family's follow-up schedule",
        parameters=[STUDY_ID],
        responses=ScheduleSerializer,
    )
    def get(self, request, study_id: str):
        family = get_family_for_follow_ups(request.user, study_id)
        body = {
            "study_id": family.study_id,
            "site": family.site.code,
            "may_record": can_record(request.user, family),
            "assessments": [assessment_body(a, state=s) for a, s in family_schedule(family)],
        }
        return Response(ScheduleSerializer(body).data)


class FamilyAssessmentView(ApiView):
    """Record what happened at one assessment (completed, partly, missed, refused), or correct it with a reason, as
    the assessment page does: the same checks and messages. For the outcome assessors of the family's site.

    After baseline the guess of the arm is required ("unsure" is an answer); it is kept apart and never sent back.
    A date outside the window needs `confirm_outside_window`. The same `submission_id` again returns the first
    submission's record (200) and records nothing. A stopped assessment, or a family withdrawn or lost, is a 409."""

    required_scope = Scope.WRITE

    @extend_schema(
        operation_id="family_assessment_record",
        summary="Record or correct an assessment",
        parameters=[STUDY_ID, MONTHS],
        request=RecordSerializer,
        responses={
            201: OpenApiResponse(AssessmentSerializer, description="Recorded."),
            200: OpenApiResponse(AssessmentSerializer, description="Recorded before, by this submission_id."),
        },
    )
    def post(self, request, study_id: str, months: int):
        family = get_family_for_follow_ups(request.user, study_id)
        self.audit_subject, self.audit_site = family.study_id, family.site
        if not can_record(request.user, family):
            raise PermissionDenied
        assessment = Assessment.objects.filter(family=family, months=months).first()
        if assessment is None:
            raise Http404
        assessment.family = family
        given = RecordSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        submission_id = data.get("submission_id") or uuid.uuid4()
        if assessment.submission_token == submission_id:
            # This submission recorded it already (a retry): its record, not a correction (the service checks the
            # same under the family's lock, for a retry that races the first).
            return Response(AssessmentSerializer(assessment_body(assessment, state=state_of(assessment))).data)
        # The page's form checks the input as it does on the page (the trial's questionnaires, a correction's reason).
        form = RecordForm.for_assessment(
            assessment,
            {
                "status": data["status"],
                "done_on": data["done_on"].isoformat(),
                "mode": data.get("mode", ""),
                "questionnaires": list(data.get("questionnaires", [])),
                "reason": data.get("reason", ""),
                "details": data.get("details", ""),
                "arm_guess": data.get("arm_guess", ""),
                "confirm_outside_window": data["confirm_outside_window"],
                "correction_reason": data.get("correction_reason", ""),
                "token": str(submission_id),
            },
        )
        if assessment.status == AssessmentStatus.STOPPED:
            # The page offers no form then; the service says why.
            form.is_valid()
            outcome = None
        elif not form.is_valid():
            raise ValidationError({field: list(errors) for field, errors in form.errors.items()})
        else:
            outcome = form.outcome(assessment)
        started = timezone.now()
        recorded = services.assessment_record(
            assessment=assessment,
            outcome=outcome or services.Outcome(status="", done_on=None),
            recorded_by=request.user,
            token=submission_id,
            correction_reason=data.get("correction_reason", ""),
        )
        # The service returns the first submission's record, untouched, for a submission_id it has seen.
        again = recorded.submission_token == submission_id and (
            recorded.recorded_at is not None and recorded.recorded_at < started
        )
        body = AssessmentSerializer(assessment_body(recorded, state=state_of(recorded))).data
        return Response(body, status=status.HTTP_200_OK if again else status.HTTP_201_CREATED)


urlpatterns = [
    path("families/<str:study_id>/assessments/", FamilyAssessmentsView.as_view(), name="family-assessments"),
    path(
        "families/<str:study_id>/assessments/<int:months>/",
        FamilyAssessmentView.as_view(),
        name="family-assessment",
    ),
]
