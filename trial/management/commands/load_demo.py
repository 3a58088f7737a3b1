"""A demo trial to click through: one user per role, and what each app adds (trial.demo): a dozen families in
different states, allocation lists and randomisations, a Family Partner's work.

Runs once: when the demo users exist it only prints their passwords again (from var/demo-users.txt).
Everything is made through the same services the pages use, so its audit trail is real.
"""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from trial.demo import Demo, demo_steps
from trial.models import Site
from trial.roles import Role

DEMO_USERS = [
    # username, full name, roles, site codes
    ("researcher", "Ragnhild Forsker", [Role.RESEARCHER], ["OEI"]),
    ("researcher.larvik", "Lars Forsker", [Role.RESEARCHER], ["LAR"]),
    ("partner", "Fredrik Familiepartner", [Role.FAMILY_PARTNER], ["OEI"]),
    ("assessor", "Astrid Utreder", [Role.OUTCOME_ASSESSOR], ["OEI", "LAR"]),
    ("pi", "Per Prosjektleder", [Role.PRINCIPAL_INVESTIGATOR], []),
    ("datamanager", "Dina Datahåndterer", [Role.DATA_MANAGER], []),
    ("admin", "Ada Administrator", [Role.ADMINISTRATOR], []),
]


class Command(BaseCommand):
    help = "Load the demo trial (users for every role, and what each app adds) unless it is already there."

    def handle(self, *args, **options):
        from django.conf import settings

        users_file = settings.VAR_DIR / "demo-users.txt"
        User = get_user_model()
        if User.objects.filter(username="researcher").exists():
            self.stdout.write("The demo trial is already loaded.")
        else:
            lines = self._load(User)
            users_file.parent.mkdir(parents=True, exist_ok=True)
            users_file.touch(mode=0o600)
            users_file.write_text("\n".join(lines) + "\n")
        if users_file.exists():
            self.stdout.write(self.style.SUCCESS("Demo users (username / password):"))
            self.stdout.write(users_file.read_text())

    @transaction.atomic
    def _load(self, User) -> list[str]:
        sites = {site.code: site for site in Site.objects.all()}
        lines = []
        users = {}
        for username, full_name, roles, site_codes in DEMO_USERS:
            password = secrets.token_urlsafe(9)
            first, last = full_name.split(" ", 1)
            # An address on the reserved domain example.org, so that the demo's messages go out as mail files too.
            email = f"{username}@example.org"
            user = User.objects.create_user(username, email, password, first_name=first, last_name=last)
            if Role.ADMINISTRATOR in roles:
                user.is_staff = user.is_superuser = True
            if Role.DATA_MANAGER in roles:
                user.is_staff = True
            user.save()
            user.groups.set(Group.objects.filter(name__in=roles))
            for code in site_codes:
                sites[code].members.add(user)
            users[username] = user
            roles_text = ", ".join(str(role.label) for role in roles)
            where = ", ".join(site_codes) or "all sites"
            lines.append(f"  {username:<18} {password:<14} {roles_text} ({where})")
        demo = Demo(sites=sites, users=users)
        for step in demo_steps():
            self.stdout.write(step.load(demo))
        return lines
