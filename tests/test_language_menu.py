"""The language menu's button and Django admin's links are both "Change" in English, and different words in Norwegian:
the button's string has its own context, so that the project's "Bytt" does not override the admin's "Endre"."""

from django.urls import reverse


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
