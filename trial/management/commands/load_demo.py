"""A demo trial to click through: one user per role, and a dozen families in different states.

Runs once: when the demo users exist it only prints their passwords again (from var/demo-users.txt).
Families are made through the same services the pages use, so their audit trail is real.
"""

import secrets
import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from families import services
from families.models import DeclineReason, ReferralSource, StruggleArea, WithdrawalReason
from trial.models import Site
from trial.roles import Role

DEMO_USERS = [
    # username, full name, roles, site codes
    ("researcher", "Ragnhild Forsker", [Role.RESEARCHER], ["OEI"]),
    ("researcher.larvik", "Lars Forsker", [Role.RESEARCHER], ["LAR"]),
    ("partner", "Fredrik Familiepartner", [Role.FAMILY_PARTNER], ["OEI"]),
    ("assessor", "Astrid Utreder", [Role.OUTCOME_ASSESSOR], ["OEI"]),
    ("pi", "Per Prosjektleder", [Role.PRINCIPAL_INVESTIGATOR], []),
    ("datamanager", "Dina Datahåndterer", [Role.DATA_MANAGER], []),
    ("admin", "Ada Administrator", [Role.ADMINISTRATOR], []),
]


class Command(BaseCommand):
    help = "Load the demo trial (users for every role, a dozen families) unless it is already there."

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
            user = User.objects.create_user(username, password=password, first_name=first, last_name=last)
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
        self._load_families(sites, users)
        # Named, not imported: the randomisation app sits above this one (STYLE.md, layers).
        call_command("load_demo_allocations", stdout=self.stdout)
        call_command("load_demo_visits", stdout=self.stdout)
        return lines

    def _load_families(self, sites, users) -> None:
        today = timezone.localdate()
        oei, lar = sites["OEI"], sites["LAR"]
        researcher, larvik = users["researcher"], users["researcher.larvik"]
        hard_times = [StruggleArea.FINANCES, StruggleArea.MENTAL_HEALTH, StruggleArea.HOUSING]

        def register(site, by, days_ago, parents=(1990,), children=(8,)):
            return services.family_register(
                site=site,
                referral_date=today - timedelta(days=days_ago),
                referral_source=ReferralSource.CHILD_WELFARE_CASEWORKER,
                parent_birth_years=list(parents),
                child_birth_dates=[today - timedelta(days=365 * age + 40) for age in children],
                identifiers=services.Identifiers(
                    contact_name=f"Demo Forelder {secrets.randbelow(1000)}",
                    phone="912 34 567",
                    address="Storgata 1, 3300 Hokksund",
                ),
                registered_by=by,
                token=uuid.uuid4(),
            )

        def screen(family, by, days_ago, eligible=True):
            return services.family_screen(
                family=family,
                screened_on=today - timedelta(days=days_ago),
                involved_with_child_welfare=True,
                harmful_circumstances=eligible,
                struggle_areas=hard_times if eligible else [StruggleArea.HOUSING],
                screened_by=by,
                token=uuid.uuid4(),
            )

        def consent(family, by, days_ago):
            return services.family_record_consent(
                family=family,
                decided_on=today - timedelta(days=days_ago),
                form_version="v1.2",
                obtained_by=by,
                recorded_by=by,
                token=uuid.uuid4(),
            )

        # Consented earlier: load_demo_allocations randomises these, all but the last at each site.
        for site, by, count in ((oei, researcher, 4), (lar, larvik, 2)):
            for n in range(count):
                family = register(site, by, 120 - 10 * n, children=(3 + n,))
                screen(family, by, 110 - 10 * n)
                consent(family, by, 100 - 10 * n)
        for site, by in ((oei, researcher), (lar, larvik)):
            register(site, by, 3)  # referred, waiting for screening
            screen(register(site, by, 20, children=(4, 9)), by, 15)  # eligible
            screen(register(site, by, 30), by, 25, eligible=False)  # not eligible, with reasons
            family = register(site, by, 60, parents=(1985, 1987), children=(2, 6, 11))
            screen(family, by, 50)
            consent(family, by, 45)  # consented
        family = register(oei, researcher, 40)
        screen(family, researcher, 35)
        services.family_record_decline(
            family=family,
            decided_on=today - timedelta(days=30),
            reason=DeclineReason.TOO_BURDENSOME,
            recorded_by=researcher,
            token=uuid.uuid4(),
        )
        family = register(oei, researcher, 90)
        screen(family, researcher, 85)
        consent(family, researcher, 80)
        services.family_withdraw(
            family=family,
            withdrawn_on=today - timedelta(days=10),
            reason=WithdrawalReason.MOVED_AWAY,
            data_may_be_kept=True,
            recorded_by=researcher,
            token=uuid.uuid4(),
        )
        for _ in range(2):
            register(oei, researcher, 1, children=(15,))
