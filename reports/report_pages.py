"""(filled in by its part of issue 11)"""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []


def register() -> None:
    """Menu items and other registrations of this part, called from ReportsConfig.ready()."""
