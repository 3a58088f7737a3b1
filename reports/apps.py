from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportsConfig(AppConfig):
    """The top of the layers: the feasibility report, the analysis datasets and the audit log read every app
    below; nothing imports this app."""

    name = "reports"
    verbose_name = _("Reports")

    def ready(self) -> None:
        from reports import audit_pages, dataset_pages, report_pages

        report_pages.register()
        dataset_pages.register()
        audit_pages.register()
