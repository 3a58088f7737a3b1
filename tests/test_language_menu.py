"""The language menu's button and Django admin's links are both "Change" in English, and different words in Norwegian:
the button's string has its own context, so that the project's "Bytt" does not override the admin's "Endre"."""

import pytest
from django.urls import reverse

# The catalogue (locale/nb) gets the context's entry when the lead merges translations-plat.po; until then the
# context-less "Change" -> "Bytt" still overrides the admin's word.
pytestmark = pytest.mark.xfail(
    strict=True, reason="passes once translations-plat.po is merged into locale/nb (issue 9, helper D, item 8)"
)


def test_it_keeps_the_admins_own_word_for_change_in_norwegian(client, dina):
    client.force_login(dina)
    client.cookies["django_language"] = "nb"

    page = client.get("/admin/").content.decode()

    assert f'<a href="{reverse("admin:trial_trialsettings_changelist")}" class="changelink"' in page
    assert ">Endre</a>" in page
    assert ">Bytt</a>" not in page


def test_it_calls_the_language_menus_button_bytt_in_norwegian(client, dina):
    client.force_login(dina)
    client.cookies["django_language"] = "nb"

    page = client.get(reverse("password_change")).content.decode()

    assert '<button class="btn btn-sm btn-light" type="submit">Bytt</button>' in page
