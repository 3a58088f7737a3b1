from django.urls import path

from followups import views

app_name = "followups"

urlpatterns = [
    path("", views.grid, name="grid"),
    path("worklist/", views.worklist_view, name="worklist"),
    path("<str:study_id>/contact/", views.contact_details, name="contact"),
    path("<str:study_id>/lost/", views.family_lost, name="lost"),
    path("<str:study_id>/<int:months>/", views.assessment_detail, name="assessment"),
    path("<str:study_id>/<int:months>/book/", views.assessment_book, name="book"),
]
