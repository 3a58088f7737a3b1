"""Recompute allocation lists from their seeds and check them against what is stored; exit 1 on any difference."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from randomization import lists
from randomization.models import AllocationList


class Command(BaseCommand):
    help = (
        "Recompute each allocation list (or one site's) from its seeds and check the stored entries, the "
        "allocations made and every commitment. Names positions that differ, never arms. A list that fails is "
        "stopped (docs/allocation-lists.md). Exits 1 on a difference."
    )

    def add_arguments(self, parser):
        parser.add_argument("--site", help="Only this site's list (its code, e.g. OEI).")
        parser.add_argument("--by", help="Username of the data manager verifying (recorded; optional).")

    def handle(self, *args, site, by, **options):
        allocation_lists = AllocationList.objects.select_related("site").order_by("site__code")
        if site:
            allocation_lists = allocation_lists.filter(site__code=site)
            if not allocation_lists.exists():
                raise CommandError(f"{site} has no allocation list.")
        user = None
        if by:
            user = get_user_model().objects.filter(username=by, is_active=True).first()
            if user is None:
                raise CommandError(f"No active user is called {by!r}.")
        failed = []
        for allocation_list in allocation_lists:
            try:
                verification = lists.allocation_list_verify(allocation_list=allocation_list, verified_by=user)
            except PermissionDenied:
                raise CommandError(f"{by} is not a data manager.") from None
            code = allocation_list.site.code
            if verification.passed:
                self.stdout.write(self.style.SUCCESS(f"{code}: passed. Commitment {allocation_list.commitment}"))
            else:
                failed.append(code)
                self.stdout.write(self.style.ERROR(f"{code}: FAILED"))
                for finding in verification.findings:
                    self.stdout.write(f"  - {lists.finding_text(finding)}")
                if hasattr(verification, "suspension"):
                    self.stdout.write(
                        "  The list is stopped: no family can be randomised from it until a data manager and the "
                        "principal investigator record what was found (on the list's page)."
                    )
        if not allocation_lists:
            self.stdout.write("There are no allocation lists yet.")
        if failed:
            raise CommandError(f"Verification failed for {', '.join(failed)}.")
