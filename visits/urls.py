from django.urls import path

from visits import views

app_name = "visits"
urlpatterns = [
    path("partner/", views.partner_home, name="partner_home"),
    path("partner/families/<str:study_id>/", views.family_work, name="family"),
    path("partner/families/<str:study_id>/contacts/new/", views.contact_new, name="contact_new"),
    path("partner/contacts/<int:pk>/", views.contact_edit, name="contact_edit"),
    path("partner/contacts/<int:pk>/void/", views.contact_void, name="contact_void"),
    path("caseload/", views.caseload, name="caseload"),
    path("caseload/weeks/", views.dose, name="dose"),
    path("caseload/partners/<int:pk>/status/", views.partner_status, name="partner_status"),
    path("families/<str:study_id>/family-partner/", views.family_assign, name="assign"),
    path("families/<str:study_id>/end-intervention/", views.intervention_end, name="end"),
]
