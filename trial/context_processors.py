from trial.roles import Role, roles_of


def roles(request):
    """The current user's roles, for menus: `{% if roles.researcher %}`."""
    held = roles_of(request.user) if hasattr(request, "user") else frozenset()
    return {"roles": {role.value: role.value in held for role in Role}}
