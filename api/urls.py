"""`/api/v1/`: the operations of each part (their modules' `urlpatterns`), the OpenAPI schema and its documentation."""

from django.contrib.auth.decorators import login_required
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated

from api import account, assessments, exports, families, problems
from api.authentication import TokenAuthentication

app_name = "api"

# The schema and its documentation: for anyone signed in (the page) or holding a token (scripts, schemathesis).
schema_view = SpectacularAPIView.as_view(
    authentication_classes=[TokenAuthentication, SessionAuthentication], permission_classes=[IsAuthenticated]
)
docs_view = login_required(SpectacularSwaggerSplitView.as_view(url_name="api:schema"))

v1 = [
    path("me/", account.MeView.as_view(), name="me"),
    path("sites/", account.SitesView.as_view(), name="sites"),
    # Each part's operations: api-families, api-followups, api-exports (keep this list in order).
    *families.urlpatterns,
    *assessments.urlpatterns,
    *exports.urlpatterns,
    path("schema/", schema_view, name="schema"),
    path("docs/", docs_view, name="docs"),
]

urlpatterns = [
    path("v1/", include(v1)),
    # Whatever else is under /api/ answers as the API does (a 404 problem), never with the pages' HTML.
    re_path(r"^", problems.not_found, name="not-found"),
]
