"""The role groups and their admin permissions, kept in step after every migrate."""

from django.contrib.auth.models import Group, Permission

from trial.roles import Role

# What each role may do in the admin. Everything else a role does happens in the app's own pages,
# where access is decided by trial.roles, not by model permissions.
ADMIN_PERMISSIONS = {
    Role.DATA_MANAGER: ["trial.view_trialsettings", "trial.change_trialsettings", "trial.view_site"],
    Role.ADMINISTRATOR: [
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "auth.view_group",
        "trial.view_site",
        "trial.add_site",
        "trial.change_site",
    ],
}


def ensure_role_groups(**kwargs) -> None:
    for role in Role:
        group, _created = Group.objects.get_or_create(name=role.value)
        wanted = ADMIN_PERMISSIONS.get(role, [])
        permissions = [
            Permission.objects.get(content_type__app_label=app, codename=codename)
            for app, codename in (name.split(".") for name in wanted)
        ]
        group.permissions.set(permissions)
