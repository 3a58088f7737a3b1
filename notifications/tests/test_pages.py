"""The inbox, the unread count, the profile and the send log, as their users meet them."""

import re

import pytest
from django.contrib.messages import get_messages
from django.test import RequestFactory
from django.urls import reverse

from notifications.context_processors import inbox as inbox_context
from notifications.models import Message, MessageStatus, Preference
from notifications.tests.factories import BODY_MARKER, OTHER_KIND, TEST_KIND, send_message
from trial.models import AuditEvent, EventKind

INBOX = reverse("notifications:inbox")
LOG = reverse("notifications:log")
PROFILE = reverse("notifications:profile")


def message_url(message: Message) -> str:
    return reverse("notifications:message", args=[message.pk])


def page_of(client, url: str, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def unread_badge(content: str) -> str | None:
    found = re.search(r"data-unread-count>(\d+)<", content)
    return found.group(1) if found else None


def log_rows(content: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-log-row="(\d+)"', content)]


# --- The inbox ------------------------------------------------------------------------------------------


def test_it_shows_a_user_their_own_messages_newest_first_with_the_unread_marked(client, frank, alice, oei):
    first = send_message(frank, study_id="OEI-001", site=oei)
    read = send_message(frank, study_id="OEI-002", site=oei, read_at="2026-01-01T10:00Z")
    newest = send_message(frank, study_id="OEI-003", site=oei)
    send_message(alice, study_id="OEI-009", site=oei)
    send_message(frank, study_id="OEI-004", site=oei, status=MessageStatus.CANCELLED, cancel_reason="Done")
    client.force_login(frank)

    content = page_of(client, INBOX)

    shown = [int(pk) for pk in re.findall(r'<li [^>]*data-message="(\d+)"', content)]
    assert shown == [newest.pk, read.pk, first.pk]
    unread = [int(pk) for pk in re.findall(r'data-message="(\d+)" data-unread', content)]
    assert unread == [newest.pk, first.pk]
    assert "Reminder about OEI-003" in content and "No contact last week with OEI-003" in content
    assert "OEI-009" not in content and "OEI-004" not in content
    assert unread_badge(content) == "2"
    assert f'href="{message_url(newest)}"' in content


def test_it_writes_the_inbox_in_the_language_of_the_page(client, frank, oei):
    send_message(frank, study_id="OEI-001", site=oei)
    client.force_login(frank)

    content = client.get(INBOX, HTTP_ACCEPT_LANGUAGE="nb").content.decode()

    assert "Påminnelse om OEI-001" in content and "Ingen kontakt forrige uke med OEI-001" in content
    assert "Reminder about" not in content


def test_it_marks_a_message_read_when_its_page_is_opened_and_links_to_what_it_is_about(client, frank, oei):
    message = send_message(frank, site=oei)
    client.force_login(frank)
    assert unread_badge(page_of(client, INBOX)) == "1"

    content = page_of(client, message_url(message))

    assert "Reminder about OEI-001" in content and BODY_MARKER in content
    assert f'href="{reverse("visits:partner_home")}"' in content
    message.refresh_from_db()
    assert message.read_at is not None
    assert unread_badge(page_of(client, INBOX)) is None
    first_read = message.read_at
    page_of(client, message_url(message))
    message.refresh_from_db()
    assert message.read_at == first_read, "opening it again keeps when it was first read"


def test_it_marks_a_message_unread_again_and_all_messages_read(client, frank, oei):
    one, two = send_message(frank, study_id="OEI-001", site=oei), send_message(frank, study_id="OEI-002", site=oei)
    client.force_login(frank)
    page_of(client, message_url(one))

    response = client.post(reverse("notifications:unread", args=[one.pk]))

    assert response.status_code == 302 and response.url == INBOX
    assert Message.objects.filter(read_at__isnull=True).count() == 2
    response = client.post(reverse("notifications:mark_all_read"))
    assert response.status_code == 302
    assert not Message.objects.filter(read_at__isnull=True).exists()
    assert unread_badge(page_of(client, INBOX)) is None
    assert two.pk in Message.objects.filter(read_at__isnull=False).values_list("pk", flat=True)


def test_it_finds_no_message_of_someone_else(client, frank, alice, oei):
    alices = send_message(alice, site=oei)
    cancelled = send_message(frank, site=oei, study_id="OEI-002", status=MessageStatus.CANCELLED)
    client.force_login(frank)

    for message in (alices, cancelled):
        assert client.get(message_url(message)).status_code == 404
        assert client.post(reverse("notifications:unread", args=[message.pk])).status_code == 404
    assert client.get(reverse("notifications:message", args=[999999])).status_code == 404
    alices.refresh_from_db()
    assert alices.read_at is None


def test_it_marks_as_read_nothing_of_anyone_else(client, frank, alice, oei):
    alices = send_message(alice, site=oei)
    client.force_login(frank)

    client.post(reverse("notifications:mark_all_read"))

    alices.refresh_from_db()
    assert alices.read_at is None


def test_it_pages_the_inbox_by_twenty(client, frank, oei):
    for number in range(1, 26):
        send_message(frank, study_id=f"OEI-{number:03}", site=oei)
    client.force_login(frank)

    first, second = page_of(client, INBOX), page_of(client, INBOX, page=2)

    assert len(re.findall(r"<li [^>]*data-message=", first)) == 20
    assert len(re.findall(r"<li [^>]*data-message=", second)) == 5
    assert "Reminder about OEI-025" in first and "Reminder about OEI-001" in second


def test_it_costs_the_same_queries_whatever_the_number_of_messages(client, frank, oei, django_assert_num_queries):
    send_message(frank, study_id="OEI-001", site=oei)
    client.force_login(frank)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        page_of(client, INBOX)
    for number in range(2, 31):
        send_message(frank, study_id=f"OEI-{number:03}", site=oei)
    with django_assert_num_queries(len(few.captured_queries)):
        page_of(client, INBOX)


# --- The unread count -------------------------------------------------------------------------------------


def test_it_counts_the_unread_messages_in_one_query_and_none_when_signed_out(frank, oei, django_assert_num_queries):
    send_message(frank, study_id="OEI-001", site=oei)
    send_message(frank, study_id="OEI-002", site=oei, read_at="2026-01-01T10:00Z")
    request = RequestFactory().get("/")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    with django_assert_num_queries(0):
        assert inbox_context(request) == {"inbox": None}
    request.user = frank
    with django_assert_num_queries(1):
        context = inbox_context(request)
        assert context["inbox"].unread == 1
        assert context["inbox"].unread == 1


def test_it_shows_the_unread_count_on_every_page(client, alice, oei):
    send_message(alice, site=oei)
    client.force_login(alice)

    for url in (reverse("families:list"), PROFILE, LOG):
        content = page_of(client, url)
        assert unread_badge(content) == "1", url
        assert "> unread message<" in content


def test_it_puts_the_send_log_in_the_menu_of_those_who_see_others_messages(client, alice, paula, dina, frank, carol):
    for user, shown in [(alice, True), (paula, True), (dina, True), (frank, False), (carol, False)]:
        client.force_login(user)
        content = page_of(client, PROFILE)
        menu = content.split('id="main-menu"')[1].split("</nav>")[0]
        assert (f'href="{LOG}"' in menu) is shown, user


# --- The profile ------------------------------------------------------------------------------------------


def test_it_saves_the_users_address_and_language_and_records_the_change_without_the_address(client, frank):
    client.force_login(frank)
    assert 'value="nb" selected' in page_of(client, PROFILE), "Norwegian by default"

    response = client.post(PROFILE, {"email": " Frank@Example.NO ", "language": "en"}, follow=True)

    assert response.redirect_chain == [(PROFILE, 302)]
    assert "Your profile is saved." in [str(message) for message in get_messages(response.wsgi_request)]
    frank.refresh_from_db()
    assert frank.email == "Frank@example.no"
    assert Preference.objects.get(user=frank).language == "en"
    event = AuditEvent.objects.get(kind=EventKind.PROFILE_CHANGED)
    assert event.user == frank and event.details == {"changed": ["email", "language"], "language": "en"}
    assert "example" not in str(event.details).lower()
    assert 'value="Frank@example.no"' in response.content.decode()


def test_it_records_only_what_changed(client, frank):
    client.force_login(frank)
    client.post(PROFILE, {"email": "frank@example.no", "language": "nb"})
    client.post(PROFILE, {"email": "frank@example.no", "language": "nb"})
    client.post(PROFILE, {"email": "frank@example.no", "language": "en"})

    assert [event.details["changed"] for event in AuditEvent.objects.order_by("pk")] == [["email"], ["language"]]
    assert Preference.objects.filter(user=frank).count() == 1


@pytest.mark.parametrize("email", ["", "   ", "not-an-address", "frank@", "a" * 250 + "@example.no", "x@y\x00.no"])
def test_it_refuses_an_address_that_is_no_address(client, frank, email):
    frank.email = "frank@example.no"
    frank.save()
    client.force_login(frank)

    response = client.post(PROFILE, {"email": email, "language": "en"})

    assert response.status_code == 200
    assert response.context["form"].errors["email"]
    frank.refresh_from_db()
    assert frank.email == "frank@example.no"
    assert not Preference.objects.filter(user=frank).exists()
    assert not AuditEvent.objects.exists()


def test_it_refuses_a_language_not_in_the_list(client, frank):
    client.force_login(frank)

    response = client.post(PROFILE, {"email": "frank@example.no", "language": "sv"})

    assert response.status_code == 200 and response.context["form"].errors["language"]
    assert not Preference.objects.exists()


# --- The send log ---------------------------------------------------------------------------------------


@pytest.fixture
def traffic(oei, lar, alice, bob, frank, carol, paula, dina):
    """Messages at both sites and without a site, to people in every role."""
    return {
        "to frank at OEI": send_message(frank, study_id="OEI-001", site=oei),
        "to carol at OEI": send_message(carol, study_id="OEI-002", site=oei),
        "to bob at LAR": send_message(bob, study_id="LAR-001", site=lar),
        "to alice at LAR": send_message(alice, study_id="LAR-002", site=lar),
        "to paula, no site": send_message(paula, study_id="OEI-003", kind=OTHER_KIND.code),
        "to dina, no site": send_message(dina, study_id="LAR-003", kind=OTHER_KIND.code),
    }


@pytest.mark.parametrize(
    ("user", "sees"),
    [
        ("dina", "all"),
        ("paula", "all"),
        ("alice", ["to frank at OEI", "to carol at OEI", "to alice at LAR"]),
        ("bob", ["to bob at LAR", "to alice at LAR"]),
        ("frank", ["to frank at OEI"]),
        ("carol", ["to carol at OEI"]),
    ],
)
def test_it_shows_each_role_its_part_of_the_send_log_and_never_a_body(client, request, traffic, user, sees):
    client.force_login(request.getfixturevalue(user))

    content = page_of(client, LOG)

    expected = set(traffic) if sees == "all" else set(sees)
    assert set(log_rows(content)) == {traffic[what].pk for what in expected}
    assert BODY_MARKER not in content and "No contact last week" not in content and "Reminder about" not in content


def test_it_shows_the_columns_of_a_message(client, dina, frank, oei):
    failed = send_message(frank, study_id="OEI-007", site=oei, status=MessageStatus.FAILED)
    client.force_login(dina)

    content = page_of(client, LOG)

    row = content.split(f'data-log-row="{failed.pk}"')[1].split("</tr>")[0]
    for text in ("Test reminder", ">OEI-007<", "frank", "Failed", ">6<", "SMTPRecipientsRefused: refused"):
        assert text in row, text
    assert frank.get_full_name() not in row


def test_it_filters_the_send_log_by_status_and_kind(client, dina, traffic):
    client.force_login(dina)
    failed = send_message(traffic["to frank at OEI"].recipient, study_id="OEI-009", status=MessageStatus.FAILED)

    assert log_rows(page_of(client, LOG, status="failed")) == [failed.pk]
    assert set(log_rows(page_of(client, LOG, kind=OTHER_KIND.code))) == {
        traffic["to paula, no site"].pk,
        traffic["to dina, no site"].pk,
    }
    assert log_rows(page_of(client, LOG, status="failed", kind=OTHER_KIND.code)) == []
    # A value that is no choice is ignored (the whole log), not an error page.
    assert len(log_rows(page_of(client, LOG, status="nonsense", kind="x" * 500))) == len(traffic) + 1


def test_the_send_log_costs_the_same_queries_whatever_the_number_of_messages(
    client, alice, oei, lar, frank, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    send_message(frank, study_id="OEI-001", site=oei, status=MessageStatus.FAILED)
    client.force_login(alice)
    with CaptureQueriesContext(connection) as few:
        page_of(client, LOG)
    for number in range(2, 40):
        send_message(frank, study_id=f"OEI-{number:03}", site=oei, status=MessageStatus.FAILED)
    with django_assert_num_queries(len(few.captured_queries)):
        content = page_of(client, LOG)
    assert len(log_rows(content)) == 39


# --- Cancelling and retrying ------------------------------------------------------------------------------


def cancel_url(message: Message) -> str:
    return reverse("notifications:cancel", args=[message.pk])


def retry_url(message: Message) -> str:
    return reverse("notifications:retry", args=[message.pk])


def test_a_data_manager_cancels_a_pending_message_with_a_reason(client, dina, frank, oei):
    message = send_message(frank, site=oei)
    client.force_login(dina)
    assert f'href="{cancel_url(message)}"' in page_of(client, LOG)
    assert "Test reminder" in page_of(client, cancel_url(message))

    response = client.post(cancel_url(message), {"reason": "Booked by phone already"})

    assert response.status_code == 302 and response.url == LOG
    message.refresh_from_db()
    assert (message.status, message.cancelled_by, message.cancel_reason) == (
        MessageStatus.CANCELLED,
        dina,
        "Booked by phone already",
    )
    assert "Booked by phone already" in page_of(client, LOG)
    client.force_login(frank)
    assert f'data-message="{message.pk}"' not in page_of(client, INBOX), "gone from the recipient's inbox"


def test_a_researcher_cancels_a_failed_message_of_their_site_but_not_of_another(client, alice, bob, frank, oei):
    message = send_message(frank, site=oei, status=MessageStatus.FAILED)
    client.force_login(bob)
    assert client.post(cancel_url(message), {"reason": "Not mine"}).status_code == 404
    client.force_login(alice)

    response = client.post(cancel_url(message), {"reason": "Wrong person"})

    assert response.status_code == 302
    message.refresh_from_db()
    assert message.status == MessageStatus.CANCELLED and message.cancelled_by == alice


def test_it_asks_for_a_reason_to_cancel(client, dina, frank, oei):
    message = send_message(frank, site=oei)
    client.force_login(dina)

    response = client.post(cancel_url(message), {"reason": "   "})

    assert response.status_code == 200 and response.context["form"].errors["reason"]
    message.refresh_from_db()
    assert message.status == MessageStatus.PENDING


@pytest.mark.parametrize("status", [MessageStatus.SENT, MessageStatus.SENDING, MessageStatus.CANCELLED])
def test_it_cancels_no_message_that_was_sent_or_is_being_sent(client, dina, frank, oei, status):
    message = send_message(frank, site=oei, status=status)
    client.force_login(dina)
    assert f'href="{cancel_url(message)}"' not in page_of(client, LOG)
    assert "can no longer be cancelled" in page_of(client, cancel_url(message))

    response = client.post(cancel_url(message), {"reason": "Too late"})

    assert response.status_code == 200
    assert "can no longer be cancelled" in response.content.decode()
    message.refresh_from_db()
    assert message.status == status


def test_the_principal_investigator_and_the_recipient_see_a_message_in_the_log_but_cannot_cancel_it(
    client, paula, frank, oei
):
    message = send_message(frank, site=oei, status=MessageStatus.FAILED)
    for user in (paula, frank):
        client.force_login(user)
        content = page_of(client, LOG)
        assert message.pk in log_rows(content)
        assert f'href="{cancel_url(message)}"' not in content and retry_url(message) not in content
        assert client.post(cancel_url(message), {"reason": "x"}).status_code == 403
        assert client.post(retry_url(message)).status_code == 403
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED


def test_a_data_manager_sends_a_failed_message_again(client, dina, frank, oei):
    message = send_message(frank, site=oei, status=MessageStatus.FAILED)
    client.force_login(dina)
    assert f'action="{retry_url(message)}"' in page_of(client, LOG)

    response = client.post(retry_url(message), follow=True)

    assert "The message will be sent again." in response.content.decode()
    message.refresh_from_db()
    assert (message.status, message.attempts, message.next_attempt_at) == (MessageStatus.PENDING, 0, None)
    event = AuditEvent.objects.get(kind=EventKind.MESSAGE_RETRIED)
    assert event.user == dina and event.details == {"message": message.pk, "message_kind": TEST_KIND.code}
    assert event.subject == "OEI-001"


@pytest.mark.parametrize("status", [MessageStatus.PENDING, MessageStatus.SENT, MessageStatus.CANCELLED])
def test_it_sends_again_only_a_failed_message(client, dina, frank, oei, status):
    message = send_message(frank, site=oei, status=status)
    client.force_login(dina)

    response = client.post(retry_url(message), follow=True)

    assert "Only a message whose sending failed can be sent again." in response.content.decode()
    message.refresh_from_db()
    assert message.status == status
    assert not AuditEvent.objects.exists()


# --- Blinding ---------------------------------------------------------------------------------------------


def test_an_assessor_sees_only_their_own_messages_never_one_that_names_an_arm(client, carol, paula, alice, oei):
    receipt = send_message(paula, study_id="OEI-005", site=oei, kind=OTHER_KIND.code, context={"arm": "intervention"})
    to_researcher = send_message(alice, study_id="OEI-006", site=oei, context={"arm": "control"})
    own = send_message(carol, study_id="OEI-007", site=oei)
    client.force_login(carol)

    inbox, log = page_of(client, INBOX), page_of(client, LOG)

    for content in (inbox, log):
        assert "OEI-005" not in content and "OEI-006" not in content
        assert "intervention" not in content.lower() and ">control<" not in content.lower()
        assert "OEI-007" in content
    assert log_rows(log) == [own.pk]
    for other in (receipt, to_researcher):
        assert client.get(message_url(other)).status_code == 404
        assert client.get(cancel_url(other)).status_code == 404


@pytest.mark.parametrize("who", ["paula", "frank", "bob"])
def test_the_services_themselves_refuse_to_cancel_or_retry_for_anyone_but_a_manager(request, who, frank, oei):
    """The rule lives in the service, not only in the view: the PI, the recipient and a researcher of another site."""
    from django.core.exceptions import PermissionDenied

    from notifications import services

    user = request.getfixturevalue(who)
    pending = send_message(frank, study_id="OEI-011", site=oei)
    failed = send_message(frank, study_id="OEI-012", site=oei, status=MessageStatus.FAILED)
    with pytest.raises(PermissionDenied):
        services.message_cancel(message=pending, cancelled_by=user, reason="Not mine to stop")
    with pytest.raises(PermissionDenied):
        services.message_retry(message=failed, retried_by=user)
    assert [m.status for m in Message.objects.filter(pk__in=[pending.pk, failed.pk]).order_by("pk")] == [
        MessageStatus.PENDING,
        MessageStatus.FAILED,
    ]
