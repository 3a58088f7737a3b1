"""The load benchmark's data (bench/load.py), written inside the production stack by
`manage.py shell -c "from bench.load_seed import seed; seed(...)"`: bench/run.py's and bench/followups_grid.py's bulk
fills at a smaller scale, plus a site of consented families ready to randomise. Writes what the locustfile needs (the
users to sign in as, study IDs, sites) as JSON.

- 3 sites of Family Partner work: LOAD_PARTNERS partners with full caseloads, LOAD_VISIT_FAMILIES intervention
  families and LOAD_CONTACTS contacts over ~18 months;
- a follow-up site: LOAD_GRID_FAMILIES randomised families with their assessments (overdue, open, due, done);
- a randomisation site: LOAD_READY_FAMILIES consented families with their baseline and an allocation list, which the
  researchers (pages) and the scripts (API) randomise during the run, and where they register new families.
"""

import json
import os
import time

LOAD_PARTNERS = int(os.environ.get("BENCH_LOAD_PARTNERS", "60"))
LOAD_VISIT_FAMILIES = int(os.environ.get("BENCH_LOAD_VISIT_FAMILIES", "900"))
LOAD_CONTACTS = int(os.environ.get("BENCH_LOAD_CONTACTS", "100000"))
LOAD_GRID_FAMILIES = int(os.environ.get("BENCH_LOAD_GRID_FAMILIES", "2000"))
LOAD_READY_FAMILIES = int(os.environ.get("BENCH_LOAD_READY_FAMILIES", "120"))


def seed(output: str, password: str) -> None:
    from django.contrib.auth.models import User

    import bench.followups_grid as followups_grid
    import bench.run as bench_run
    from families.models import Family
    from randomization import lists
    from randomization.tests.factories import ready_to_randomise
    from trial.models import Site, TrialSettings
    from trial.roles import Role
    from trial.tests.factories import UserFactory
    from visits.models import PartnerProfile

    started = time.perf_counter()
    capacity = TrialSettings.current().partner_capacity
    bench_run.VISIT_SITES = 3
    bench_run.PARTNERS = LOAD_PARTNERS
    bench_run.VISIT_FAMILIES = min(LOAD_VISIT_FAMILIES, capacity * LOAD_PARTNERS)
    bench_run.CONTACTS = LOAD_CONTACTS
    data_manager = UserFactory(username="bench-load-data-manager", roles=[Role.DATA_MANAGER])
    visits = bench_run.fill_visits(data_manager)
    timings = {"visits": round(time.perf_counter() - started)}
    followups_grid.GRID_FAMILIES = LOAD_GRID_FAMILIES
    followups = followups_grid.fill_followups()
    timings["followups"] = round(time.perf_counter() - started)

    site = Site.objects.create(code="BLR", name="Bench load randomisation", expected_recruitment=LOAD_READY_FAMILIES)
    visit_sites = list(Site.objects.filter(code__startswith="BV").order_by("code"))
    researcher = UserFactory(username="bench-load-researcher", roles=[Role.RESEARCHER], sites=[site, *visit_sites])
    ready = [ready_to_randomise(site, by=researcher).study_id for _ in range(LOAD_READY_FAMILIES)]
    timings["ready"] = round(time.perf_counter() - started)
    lists.allocation_list_generate(site=site, generated_by=data_manager, length=2 * LOAD_READY_FAMILIES)

    # The users the locustfile signs in as get the run's password (the bulk fill leaves theirs unusable).
    partners = [
        profile.user
        for profile in PartnerProfile.objects.filter(active_families__gt=0, site__code__startswith="BV")
        .select_related("user")
        .order_by("pk")
    ]
    signing_in = [researcher, visits["principal_investigator"], followups["assessor"], *partners]
    for user in signing_in:
        user.set_password(password)
    User.objects.bulk_update(signing_in, ["password"])
    data = {
        "researcher": researcher.username,
        "pi": visits["principal_investigator"].username,
        "assessor": followups["assessor"].username,
        "partners": [user.username for user in partners],
        "ready": ready,
        "site": site.code,
        "site_pk": site.pk,
        "families": Family.objects.count(),
        "seconds": round(time.perf_counter() - started),
        "timings": timings,
    }
    with open(output, "w") as file:
        json.dump(data, file)
