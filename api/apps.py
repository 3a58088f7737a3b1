from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    """The REST API (`/api/v1/`): the top of the layers with `reports`; it calls the same services and selectors as
    the pages, and nothing imports it."""

    name = "api"
    verbose_name = _("API")
