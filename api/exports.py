"""The analysis datasets and the audit log through the API (export scope), with the pages' rules and the pages' code:

- `GET /api/v1/datasets/`, `datasets/codebook/`, `datasets/{key}/`: for data managers and the PI
  (`reports.dataset_pages.can_download_datasets`); a blinded caller gets what the page gives a blinded user (no arm,
  no dose, no guess, no contacts: the builders refuse the rest themselves). A file is the page's file
  (`reports.dataset_pages.dataset_download`), recorded as the page records it, with the token's name.
- `GET /api/v1/audit-log/` and `audit-log/csv/`: for the PI, data managers and administrators
  (`reports.audit.may_read_audit_log`), filtered by the page's own filter form; rows as the page shows them (labels
  of the fields changed, never a value); the CSV is the page's, recorded as the page records it, with the token's
  name.
"""

import base64
import binascii

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.urls import path
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from api.authentication import token_of
from api.base import ApiView
from api.models import Scope
from api.problems import PROBLEM_CONTENT_TYPE, URN, ProblemSerializer, problem
from reports import dataset_files
from reports.audit import AuditRow, Cursor, audit_page, may_read_audit_log
from reports.audit_pages import AuditFilterForm, audit_csv_response
from reports.dataset_pages import (
    DATASET_ROLES,
    FILE_NOT_WRITTEN,
    FORMAT_CHOICES,
    FileNotWritten,
    can_download_datasets,
    dataset_download,
)
from reports.datasets import DATASET_TITLES, KIND_LABELS, ExportScope, codebook, dataset_keys
from trial.roles import is_blinded, sites_for

CSV_TYPE = "text/csv"
# A file that could not be written (a full disk): try again after about this many seconds.
FILE_RETRY_AFTER_SECONDS = 300
FILE_TYPES = {
    dataset_files.CSV: CSV_TYPE,
    dataset_files.XLSX: dataset_files.CONTENT_TYPES[dataset_files.XLSX],
    dataset_files.DTA: dataset_files.CONTENT_TYPES[dataset_files.DTA],
    dataset_files.SAV: dataset_files.CONTENT_TYPES[dataset_files.SAV],
}

BAD_REQUEST = (400, PROBLEM_CONTENT_TYPE)


class FileView(ApiView):
    """A view that answers with a file (or a problem): whatever the request accepts, it is not refused for it."""

    exports = True

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


def _token_name(request) -> str:
    token = token_of(request)
    return token.name if token else ""


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


# --- Datasets ------------------------------------------------------------------------------------------------


class ChoiceSerializer(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field named label


class DatasetSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The dataset's key in datasets/{key}/.")
    title = serializers.CharField()


class DatasetListSerializer(serializers.Serializer):
    datasets = DatasetSerializer(many=True)
    formats = ChoiceSerializer(many=True, help_text="The values of ?file_format=.")
    blinded = serializers.BooleanField(help_text="True: no arm, no dose, no guess and no contacts in any file.")


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "integer"}]})
class CodeField(serializers.Field):
    """A code as the files hold it: a text code, or an integer (0/1 flags, site numbers)."""

    def to_representation(self, value):
        return value


class ValueSerializer(serializers.Serializer):
    code = CodeField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field named label


class VariableSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The column's name in every file.")
    label = serializers.CharField()  # type: ignore[assignment]  # a field named label
    type = serializers.ChoiceField(choices=sorted(KIND_LABELS), help_text="text, int, float, date, code or flag.")
    type_label = serializers.CharField()
    values = ValueSerializer(many=True, help_text="The allowed codes of a code or flag variable, with their labels.")


class CodebookDatasetSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    variables = VariableSerializer(many=True)


class CodebookSerializer(serializers.Serializer):
    datasets = CodebookDatasetSerializer(many=True)


class DatasetListView(ApiView):
    """The analysis datasets this caller may download, and the file formats. For data managers and the principal
    investigator; a blinded caller (who also holds the outcome-assessor role) is not offered the contacts."""

    required_scope = Scope.EXPORT

    @extend_schema(operation_id="datasets_list", summary="The analysis datasets", responses=DatasetListSerializer)
    def get(self, request):
        _require(can_download_datasets(request.user))
        blinded = is_blinded(request.user)
        body = {
            "datasets": [{"key": key, "title": DATASET_TITLES[key]} for key in dataset_keys(blinded=blinded)],
            "formats": [{"code": code, "label": label} for code, label in FORMAT_CHOICES],
            "blinded": blinded,
        }
        return Response(DatasetListSerializer(body).data)


class CodebookView(ApiView):
    """The codebook: each dataset's variables with their labels, types and coded values, from the same definitions
    as the files and the datasets page (labels in the language asked for, by Accept-Language)."""

    required_scope = Scope.EXPORT

    @extend_schema(operation_id="datasets_codebook", summary="The datasets' codebook", responses=CodebookSerializer)
    def get(self, request):
        _require(can_download_datasets(request.user))
        datasets = codebook(ExportScope(site_ids=None, blinded=is_blinded(request.user)))
        body = {
            "datasets": [
                {
                    "key": dataset.key,
                    "title": dataset.title,
                    "variables": [
                        {
                            "name": variable.name,
                            "label": variable.label,
                            "type": variable.kind,
                            "type_label": variable.kind_label,
                            "values": [{"code": code, "label": label} for code, label in variable.values],
                        }
                        for variable in dataset.variables
                    ],
                }
                for dataset in datasets
            ]
        }
        return Response(CodebookSerializer(body).data)


class DatasetOptionsSerializer(serializers.Serializer):
    file_format = serializers.ChoiceField(
        choices=[code for code, _label in FORMAT_CHOICES],
        required=False,
        default=dataset_files.CSV,
        help_text="csv (streamed), xlsx (every dataset and the codebook), dta (Stata) or sav (SPSS).",
    )
    labels = serializers.BooleanField(
        required=False, default=False, help_text="Coded values as labels (csv and xlsx; Stata and SPSS hold codes)."
    )
    shift_dates = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Move every date of a family the same number of days earlier (drawn once per family).",
    )
    site = serializers.CharField(
        required=False, default="all", max_length=16, help_text="A site's code, or all (the default)."
    )


DATASET_PARAMETERS = [
    OpenApiParameter("key", str, OpenApiParameter.PATH, description="families, assessments or contacts."),
    OpenApiParameter(
        "file_format", str, enum=[code for code, _label in FORMAT_CHOICES], description="Default csv (streamed)."
    ),
    OpenApiParameter("labels", bool, description="Coded values as labels (default false)."),
    OpenApiParameter("shift_dates", bool, description="Shift dates (default false)."),
    OpenApiParameter("site", str, description="A site's code, or all (the default)."),
]


class DatasetFileView(FileView):
    """One analysis dataset as a file: the same file as the datasets page gives for the same choices, with the same
    name (Content-Disposition). CSV is streamed a chunk of families at a time; xlsx holds every dataset and the
    codebook. The download is recorded in the audit trail with the token's name. A blinded caller's files hold no
    arm, dose or guess, and the contacts dataset is not theirs (404)."""

    required_scope = Scope.EXPORT

    @extend_schema(
        operation_id="dataset_download",
        summary="Download an analysis dataset",
        parameters=DATASET_PARAMETERS,
        responses={
            (200, media_type): OpenApiResponse(OpenApiTypes.BINARY, description="The file.")
            for media_type in FILE_TYPES.values()
        }
        | {BAD_REQUEST: OpenApiResponse(ProblemSerializer, description="A parameter is not valid.")}
        | {
            (503, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                ProblemSerializer, description="The file could not be written (the server's disk may be full)."
            )
        },
    )
    def get(self, request, key: str):
        _require(can_download_datasets(request.user))
        blinded = is_blinded(request.user)
        if key not in dataset_keys(blinded=blinded):
            raise Http404
        options = DatasetOptionsSerializer(data=request.query_params)
        options.is_valid(raise_exception=True)
        chosen = options.validated_data
        site = None
        if chosen["site"] != "all":
            site = sites_for(request.user, *DATASET_ROLES).filter(code=chosen["site"]).first()
            if site is None:
                raise ValidationError({"site": _("No site of yours has this code; give a site's code or all.")})
        self.audit_subject, self.audit_site = key, site
        try:
            return dataset_download(
                user=request.user,
                key=key,
                file_format=chosen["file_format"],
                site=site,
                shifted=chosen["shift_dates"],
                labels=chosen["labels"],
                token=_token_name(request),
            )
        except FileNotWritten:
            # As on the page: this download only fails, with a problem that says so (never a 500).
            response = problem(503, str(FILE_NOT_WRITTEN), type_=f"{URN}file-not-written", instance=request.path)
            response["Retry-After"] = str(FILE_RETRY_AFTER_SECONDS)
            return response


# --- The audit log -------------------------------------------------------------------------------------------


def cursor_text(cursor: Cursor) -> str:
    """A page's end as an opaque, URL-safe text (the page's own cursor, encoded)."""
    return base64.urlsafe_b64encode(str(cursor).encode()).decode().rstrip("=")


def parse_cursor(text: str) -> Cursor:
    """Raises ValueError for any text that `cursor_text` did not make."""
    try:
        decoded = base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError) as error:
        raise ValueError("not a cursor") from error
    return Cursor.parse(decoded)


# The API's names of the page's filters.
FILTER_NAMES = {
    "user": "user",
    "family": "family",
    "site": "site",
    "kind": "kind",
    "from": "date_from",
    "to": "date_to",
}
AUDIT_PARAMETERS = [
    OpenApiParameter("user", str, description="A username."),
    OpenApiParameter("family", str, description="A study ID, e.g. OEI-007."),
    OpenApiParameter("site", str, description="A site's code."),
    OpenApiParameter(
        "kind",
        str,
        description='A kind of row: an audited model ("families.family") or an event ("event:api_call"); the kinds '
        "are those of the audit log page's filter.",
    ),
    OpenApiParameter(
        "from", str, description="From this day (YYYY-MM-DD) or moment (YYYY-MM-DDTHH:MM[:SS][+01:00]), included."
    ),
    OpenApiParameter("to", str, description="To this day or moment, included."),
]


def audit_filters(request):
    """The request's filters, read by the audit log page's own form; a bad one is a 400 problem."""
    form = AuditFilterForm({form_name: request.query_params.get(name, "") for name, form_name in FILTER_NAMES.items()})
    if not form.is_valid():
        api_names = {form_name: name for name, form_name in FILTER_NAMES.items()}
        raise ValidationError({api_names.get(field, field): list(errors) for field, errors in form.errors.items()})
    return form.filters()


class AuditRowSerializer(serializers.Serializer):
    when = serializers.CharField(
        help_text="When: a moment (ISO 8601, Europe/Oslo), or only the day for a blinded reader of a family's row."
    )
    date_only = serializers.BooleanField()
    who = serializers.CharField(help_text="The username; empty for the system (or hidden from a blinded reader).")
    what = serializers.CharField(help_text="The record and what happened to it, or the event, in words.")
    kind = serializers.CharField(help_text="The kind of row, as the kind filter takes it.")
    study_id = serializers.CharField()
    site = serializers.CharField(help_text="The site's code.")
    reason = serializers.CharField(help_text="The change's reason as the page shows it.")
    fields = serializers.ListField(  # type: ignore[assignment]  # a field named fields
        child=serializers.CharField(), help_text="The labels of the fields changed."
    )


class AuditPageSerializer(serializers.Serializer):
    rows = AuditRowSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="The next (older) page's URL; null on the last page.")
    cursor = serializers.CharField(allow_null=True, help_text="The next page's cursor (opaque); null on the last.")


def audit_row_body(row: AuditRow) -> dict:
    when = timezone.localtime(row.when)
    return {
        "when": when.date().isoformat() if row.date_only else when.isoformat(),
        "date_only": row.date_only,
        "who": row.who,
        "what": row.what,
        "kind": row.kind,
        "study_id": row.study_id,
        "site": row.site,
        "reason": row.reason,
        "fields": [str(label) for label in row.fields],
    }


class AuditLogView(ApiView):
    """The audit log, newest first, a page of 50 rows at a time (follow `next`, or send `cursor`), filtered by
    user, family, site, kind and time: every change of a record (the labels of the fields changed, never a value)
    and every event (downloads, exports, API calls with their token's name). For the principal investigator, data
    managers and administrators; a blinded reader gets what the page gives them."""

    required_scope = Scope.EXPORT
    exports = True

    @extend_schema(
        operation_id="audit_log",
        summary="The audit log",
        parameters=[
            *AUDIT_PARAMETERS,
            OpenApiParameter("cursor", str, description="Where the previous page ended (its `cursor`)."),
        ],
        responses={
            200: AuditPageSerializer,
            BAD_REQUEST: OpenApiResponse(ProblemSerializer, description="A filter is not valid."),
        },
    )
    def get(self, request):
        _require(may_read_audit_log(request.user))
        filters = audit_filters(request)
        cursor = None
        if request.query_params.get("cursor"):
            try:
                cursor = parse_cursor(request.query_params["cursor"])
            except ValueError:
                raise ValidationError(
                    {"cursor": _("This link to older entries is not valid; start again from the newest.")}
                ) from None
        self.audit_site = filters.site
        page = audit_page(viewer=request.user, filters=filters, cursor=cursor)
        next_cursor = cursor_text(page.next_cursor) if page.next_cursor else None
        next_url = None
        if next_cursor:
            query = {name: value for name, value in request.query_params.items() if name != "cursor"}
            next_url = request.build_absolute_uri(f"{request.path}?{urlencode({**query, 'cursor': next_cursor})}")
        body = {"rows": [audit_row_body(row) for row in page.rows], "next": next_url, "cursor": next_cursor}
        return Response(AuditPageSerializer(body).data)


class AuditLogCsvView(FileView):
    """The audit log as the audit log page's CSV, filtered as in audit-log/, every row at once, streamed. The
    export is itself recorded in the audit trail, with its filters and the token's name."""

    required_scope = Scope.EXPORT

    @extend_schema(
        operation_id="audit_log_csv",
        summary="The audit log as CSV",
        parameters=AUDIT_PARAMETERS,
        responses={
            (200, CSV_TYPE): OpenApiResponse(OpenApiTypes.STR, description="The CSV file."),
            BAD_REQUEST: OpenApiResponse(ProblemSerializer, description="A filter is not valid."),
        },
    )
    def get(self, request):
        _require(may_read_audit_log(request.user))
        filters = audit_filters(request)
        self.audit_site = filters.site
        return audit_csv_response(user=request.user, filters=filters, token=_token_name(request))


urlpatterns = [
    path("datasets/", DatasetListView.as_view(), name="datasets"),
    path("datasets/codebook/", CodebookView.as_view(), name="dataset-codebook"),
    path("datasets/<str:key>/", DatasetFileView.as_view(), name="dataset"),
    path("audit-log/", AuditLogView.as_view(), name="audit-log"),
    path("audit-log/csv/", AuditLogCsvView.as_view(), name="audit-log-csv"),
]
