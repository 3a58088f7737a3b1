"""The API tokens' pages, under /accounts/tokens/ (trial/urls.py)."""

from django.urls import path

from api import token_pages

app_name = "tokens"

urlpatterns = [
    path("", token_pages.token_list, name="list"),
    path("<int:pk>/revoke/", token_pages.token_revoke_page, name="revoke"),
]
