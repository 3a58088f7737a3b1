"""The server error page (templates/500.html) is static: it must not need the database, a template tag or a
translation, since any of them may be what failed. It tells the truth in both languages: a change is saved whole
or not at all, but a failure after the commit (while the next page was being made) leaves it saved."""

from django.test import RequestFactory
from django.views.defaults import server_error


def error_page() -> str:
    response = server_error(RequestFactory().get("/families/"))
    assert response.status_code == 500
    return response.content.decode()


def test_it_does_not_promise_that_nothing_was_saved():
    page = error_page()

    assert "half-saved" not in page and "halvveis lagret" not in page
    assert "Nothing you entered" not in page and "Ingenting av det du skrev" not in page


def test_it_asks_the_user_to_check_whether_the_change_was_saved_before_entering_it_again():
    page = error_page()

    assert "may have been saved" in page
    assert "kan være lagret" in page
    assert "whole or not at all" in page
    assert "helt eller ikke i det hele tatt" in page


def test_it_is_a_complete_page_in_both_languages():
    page = error_page()

    assert '<html lang="en">' in page
    assert '<p lang="nb">' in page or '<div lang="nb">' in page
    assert "{%" not in page and "{{" not in page
