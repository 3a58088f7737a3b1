"""The inbox, the profile and the send log.

Opening a message (its page, a GET) marks it read: the mark is the reader's own receipt, changes no record of the
trial, and is idempotent, as in every mail client; a link from the inbox, an e-mail or a bookmark then works the same
way without JavaScript or a form. "Mark as unread" and "Mark all as read" are POSTs.
"""

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from notifications import selectors, services
from notifications.forms import CancelForm, LogFilterForm, ProfileForm
from notifications.kinds import get_kind
from notifications.models import Message, MessageStatus, Preference
from trial.forms import add_service_error
from trial.roles import AuthenticatedHttpRequest

INBOX_PER_PAGE = 20
LOG_PER_PAGE = 50


@dataclass(frozen=True)
class InboxRow:
    message: Message
    subject: str
    body: str
    link: str | None


def _row(message: Message) -> InboxRow:
    # The page's language, not the e-mail's: the inbox reads like the rest of the page the user chose.
    subject, body = services.message_text(message, translation.get_language())
    return InboxRow(message, subject, body, services.message_link(message))


def _own_message(request: AuthenticatedHttpRequest, pk: int) -> Message:
    """One of the user's own messages; 404 for anyone else's, and for a cancelled one (not in the inbox)."""
    message = selectors.inbox_of(request.user).filter(pk=pk).first()
    if message is None:
        raise Http404
    return message


@login_required
def inbox(request: AuthenticatedHttpRequest) -> HttpResponse:
    page = Paginator(selectors.inbox_of(request.user), INBOX_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "notifications/inbox.html",
        {"page": page, "rows": [_row(message) for message in page.object_list]},
    )


@login_required
def message_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    message = _own_message(request, pk)
    was_unread = message.read_at is None
    services.message_mark_read(message=message, user=request.user)
    return render(request, "notifications/message.html", {"row": _row(message), "was_unread": was_unread})


@require_POST
@login_required
def message_unread(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    message = _own_message(request, pk)
    services.message_mark_unread(message=message, user=request.user)
    messages.success(request, _("The message is marked as unread."))
    return redirect("notifications:inbox")


@require_POST
@login_required
def mark_all_read(request: AuthenticatedHttpRequest) -> HttpResponse:
    count = services.messages_mark_all_read(user=request.user)
    if count:
        messages.success(request, _("Every message is marked as read."))
    return redirect("notifications:inbox")


@login_required
def profile(request: AuthenticatedHttpRequest) -> HttpResponse:
    preference = Preference.objects.filter(user=request.user).first()
    initial = {"email": request.user.email, "language": preference.language if preference else "nb"}
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.preference_save(
                user=request.user, email=form.cleaned_data["email"], language=form.cleaned_data["language"]
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Your profile is saved."))
            return redirect("notifications:profile")
    return render(request, "notifications/profile.html", {"form": form})


@dataclass(frozen=True)
class LogRow:
    message: Message
    kind: str
    about: str
    can_manage: bool


def about_of(message: Message) -> str:
    """What a message is about, as the log shows it: the study ID and the site's code from its context (never a
    name: a context holds study IDs, site codes, dates and numbers only)."""
    parts = [str(message.context.get("study_id") or "")]
    site_code = message.site.code if message.site else message.context.get("site")
    if site_code and site_code not in parts[0]:
        parts.append(str(site_code))
    return " · ".join(part for part in parts if part) or "—"


@login_required
def send_log(request: AuthenticatedHttpRequest) -> HttpResponse:
    log = selectors.send_log_for(request.user)
    filters = LogFilterForm(request.GET or None, kinds=set(log.order_by().values_list("kind", flat=True).distinct()))
    if filters.is_valid():
        if filters.cleaned_data["status"]:
            log = log.filter(status=filters.cleaned_data["status"])
        if filters.cleaned_data["kind"]:
            log = log.filter(kind=filters.cleaned_data["kind"])
    page = Paginator(log, LOG_PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        LogRow(
            message,
            str(kind.label) if (kind := get_kind(message.kind)) else message.kind,
            about_of(message),
            message.status in (MessageStatus.PENDING, MessageStatus.FAILED)
            and selectors.can_manage(request.user, message),
        )
        for message in page.object_list
    ]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "notifications/send_log.html",
        {
            "filters": filters,
            "page": page,
            "rows": rows,
            "query": query.urlencode(),
            "sees_others": selectors.can_see_others_messages(request.user),
        },
    )


def _managed_message(request: AuthenticatedHttpRequest, pk: int) -> Message:
    """A message of the send log the user may cancel or retry: 404 if they do not see it in their log, 403 if
    they see it but may not act on it."""
    message = selectors.send_log_for(request.user).filter(pk=pk).first()
    if message is None:
        raise Http404
    if not selectors.can_manage(request.user, message):
        raise PermissionDenied
    return message


@login_required
def message_cancel(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    message = _managed_message(request, pk)
    form = CancelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.message_cancel(message=message, cancelled_by=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("The message is cancelled: it will not be sent."))
            return redirect("notifications:log")
    kind = get_kind(message.kind)
    return render(
        request,
        "notifications/cancel.html",
        {
            "message": message,
            "kind_label": str(kind.label) if kind else message.kind,
            "about": about_of(message),
            "form": form,
            "cancellable": message.status in (MessageStatus.PENDING, MessageStatus.FAILED),
        },
    )


@require_POST
@login_required
def message_retry(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    message = _managed_message(request, pk)
    try:
        services.message_retry(message=message, retried_by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("The message will be sent again."))
    return redirect("notifications:log")
