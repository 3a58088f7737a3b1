"""The demo trial's families (trial.demo): a dozen at Øvre Eiker and Larvik, in every state of enrolment."""

import secrets
import uuid
from datetime import timedelta

from django.utils import timezone

from families import services
from families.models import DeclineReason, Family, ReferralSource, StruggleArea, WithdrawalReason
from trial.demo import Demo


def load_demo_families(demo: Demo) -> str:
    today = timezone.localdate()
    oei, lar = demo.sites["OEI"], demo.sites["LAR"]
    researcher, larvik = demo.users["researcher"], demo.users["researcher.larvik"]
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
    return f"{Family.objects.count()} families in every state of enrolment."
