from notifications.selectors import Inbox


def inbox(request):
    """The unread count in the main menu: one query, made only when a page shows it, and none when signed out."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"inbox": None}
    return {"inbox": Inbox(user)}
