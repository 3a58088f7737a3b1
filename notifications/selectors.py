"""Reads of messages that several pages share: a user's inbox, their unread count, and the send log by role.

Who sees what (docs/architecture.md, "Messages"): everyone their own messages; in the send log, data managers and
the principal investigator every message, researchers those of their sites and their own. Only data managers (any
message) and researchers (messages of their sites) may cancel or retry one.
"""

from django.contrib.auth.models import User as AuthUser
from django.db.models import Q, QuerySet
from django.utils.functional import cached_property

from notifications.models import Message, MessageStatus
from trial.roles import Role, User, has_role, site_ids_for

# Roles that see other people's messages in the send log (the rest see their own only).
LOG_ROLES = (Role.DATA_MANAGER, Role.PRINCIPAL_INVESTIGATOR, Role.RESEARCHER)
# Roles that cancel and retry messages: data managers anywhere, researchers at their sites.
MANAGE_ROLES = (Role.DATA_MANAGER, Role.RESEARCHER)


def inbox_of(user: AuthUser) -> QuerySet[Message]:
    """The user's own messages, newest first. A cancelled message (someone stopped it with a reason) and a message
    about work that is done (`resolved_at`: an assessment recorded) are not in the inbox: the log keeps them."""
    return (
        Message.objects.filter(recipient=user, resolved_at__isnull=True)
        .exclude(status=MessageStatus.CANCELLED)
        .order_by("-created_at", "-pk")
    )


def unread_count(user: AuthUser) -> int:
    """One query (the index message_inbox: recipient, read_at)."""
    return inbox_of(user).filter(read_at__isnull=True).count()


class Inbox:
    """The menu's unread count for the current user, counted at most once per request and only if a page shows it."""

    def __init__(self, user: AuthUser) -> None:
        self.user = user

    @cached_property
    def unread(self) -> int:
        return unread_count(self.user)


def send_log_for(user: User) -> QuerySet[Message]:
    """The messages the user sees in the send log, newest first, with what a row shows (no query per row)."""
    messages = Message.objects.select_related("recipient", "site").order_by("-created_at", "-pk")
    if not user.is_authenticated:
        return messages.none()
    site_ids = site_ids_for(user, *LOG_ROLES)
    if site_ids is None:  # a data manager or the principal investigator: every message
        return messages
    own = Q(recipient=user)
    if site_ids:  # a researcher: the messages of their sites, and their own
        return messages.filter(own | Q(site_id__in=site_ids))
    return messages.filter(own)


def can_manage(user: User, message: Message) -> bool:
    """Cancel or retry: data managers any message, researchers the messages of their sites."""
    if has_role(user, Role.DATA_MANAGER):
        return True
    if message.site_id is None:
        return False
    site_ids = site_ids_for(user, Role.RESEARCHER)
    return site_ids is None or message.site_id in site_ids


def can_manage_any(user: User) -> bool:
    return has_role(user, *MANAGE_ROLES)


def can_see_others_messages(user: User) -> bool:
    """Whether the send log shows more than the user's own messages (and so belongs in their menu)."""
    return has_role(user, *LOG_ROLES)
