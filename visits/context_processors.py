from visits.selectors import slot_alerts as _slot_alerts


def slot_alerts(request):
    """Researchers are told on every page when families wait while a Family Partner has a free slot."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"slot_alerts": []}
    return {"slot_alerts": _slot_alerts(user)}
