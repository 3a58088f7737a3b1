from reports import audit_pages, dataset_pages, report_pages

app_name = "reports"

# Each part of the app owns its pages and their routes.
urlpatterns = report_pages.urlpatterns + dataset_pages.urlpatterns + audit_pages.urlpatterns
