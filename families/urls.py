from django.urls import path

from families import views

app_name = "families"
urlpatterns = [
    path("", views.family_list, name="list"),
    path("new/", views.family_register, name="register"),
    path("<str:study_id>/", views.family_detail, name="detail"),
    path("<str:study_id>/household/", views.family_household, name="household"),
    path("<str:study_id>/identifiers/", views.family_identifiers, name="identifiers"),
    path("<str:study_id>/screen/", views.family_screen, name="screen"),
    path("<str:study_id>/consent/", views.family_consent, name="consent"),
    path("<str:study_id>/withdraw/", views.family_withdraw, name="withdraw"),
]
