from trial.navigation import menu_for


def navigation(request):
    """The main menu for the current user, from the items the apps registered (trial.navigation)."""
    return {"menu": menu_for(request)}
