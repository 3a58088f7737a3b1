"""Who the token acts for: `GET /api/v1/me/` (user, roles, sites, the token's scopes and expiry) and
`GET /api/v1/sites/` (the sites the caller works at, with their recruitment state)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from api.authentication import token_of
from api.base import ApiView
from trial.models import RecruitmentState, Site
from trial.roles import Role, is_blinded, roles_of, site_ids_for


class SiteSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Three capital letters; the prefix of the site's study IDs.")
    name = serializers.CharField()
    recruitment_state = serializers.ChoiceField(choices=RecruitmentState.choices)


class TokenSerializer(serializers.Serializer):
    name = serializers.CharField()
    prefix = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    expires_at = serializers.DateTimeField()


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices))
    blinded = serializers.BooleanField(help_text="True for an outcome assessor: no arm is ever shown.")
    sites = SiteSerializer(many=True)
    token = TokenSerializer()


def visible_sites(user) -> list[Site]:
    site_ids = site_ids_for(user, *Role.values)
    sites = Site.objects.all() if site_ids is None else Site.objects.filter(pk__in=site_ids)
    return list(sites.order_by("code"))


class MeView(ApiView):
    """The account the token acts for: its roles (an outcome assessor is blinded), its sites, and the token's own
    scopes and expiry."""

    @extend_schema(operation_id="me", responses=MeSerializer, summary="Who this token acts for")
    def get(self, request):
        token = token_of(request)
        body = {
            "username": request.user.get_username(),
            "roles": sorted(roles_of(request.user)),
            "blinded": is_blinded(request.user),
            "sites": visible_sites(request.user),
            "token": token,
        }
        return Response(MeSerializer(body).data)


class SitesView(ApiView):
    """The sites the caller works at (every site for the principal investigator and the data manager), with
    whether each takes new families."""

    @extend_schema(operation_id="sites_list", responses=SiteSerializer(many=True), summary="The caller's sites")
    def get(self, request):
        return Response(SiteSerializer(visible_sites(request.user), many=True).data)
