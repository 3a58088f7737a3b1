from django.urls import path

from randomization import views

app_name = "randomization"
urlpatterns = [
    path("randomisation/", views.list_overview, name="lists"),
    path("recruitment/", views.recruitment_page, name="recruitment"),
    path("randomisation/new/", views.list_generate, name="generate"),
    path("randomisation/<str:site_code>/", views.list_detail, name="list"),
    path("randomisation/<str:site_code>/commitment/", views.list_commitment, name="commitment"),
    path("randomisation/<str:site_code>/list.txt", views.list_canonical_text, name="canonical_text"),
    path("randomisation/<str:site_code>/extend/", views.list_extend, name="extend"),
    path("randomisation/<str:site_code>/verify/", views.list_verify, name="verify"),
    path("randomisation/<str:site_code>/review/", views.list_review, name="review"),
    path("randomisation/<str:site_code>/review/agree/", views.list_review_approve, name="review_approve"),
    path("randomisation/<str:site_code>/unseal/", views.list_unseal, name="unseal"),
    path("randomisation/<str:site_code>/unseal/agree/", views.list_unseal_approve, name="unseal_approve"),
    path("families/<str:study_id>/randomise/", views.family_randomise, name="randomise"),
    path("families/<str:study_id>/randomisation-receipt/", views.randomisation_receipt, name="receipt"),
    path("families/<str:study_id>/randomised-in-error/", views.allocation_annotate, name="annotate"),
    path("families/<str:study_id>/unblind/", views.family_unblind, name="unblind"),
]
