"""Generate a site's sealed allocation list from the command line; prints its commitment, never its entries."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from randomization import lists
from randomization.selectors import list_predictability
from trial.models import Site


def _sizes(text: str) -> list[int]:
    try:
        return sorted({int(part) for part in text.replace(" ", "").split(",") if part})
    except ValueError:
        raise CommandError("--block-sizes takes whole numbers separated by commas, e.g. 2,4,6") from None


def _ratio(text: str) -> tuple[int, int]:
    try:
        k, m = (int(part) for part in text.split(":"))
    except ValueError:
        raise CommandError("--ratio takes two whole numbers, e.g. 1:1 or 2:1") from None
    return k, m


class Command(BaseCommand):
    help = "Generate the sealed allocation list of a site (stratum) and print its SHA-256 commitment."

    def add_arguments(self, parser):
        parser.add_argument("--site", required=True, help="The site's code, e.g. OEI.")
        parser.add_argument("--by", required=True, help="Username of the data manager generating the list.")
        parser.add_argument("--block-sizes", help="Block sizes, e.g. 2,4,6 (default: the trial settings).")
        parser.add_argument("--ratio", help="Intervention:control, e.g. 1:1 (default: the trial settings).")
        parser.add_argument("--length", type=int, help="Entries at least (default: expected recruitment + margin).")
        parser.add_argument(
            "--design-reason", default="", help="Why a single block size (required when --block-sizes gives one)."
        )

    def handle(self, *args, site, by, block_sizes, ratio, length, design_reason, **options):
        site_row = Site.objects.filter(code=site).first()
        if site_row is None:
            raise CommandError(f"No site has the code {site!r}.")
        user = get_user_model().objects.filter(username=by, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user is called {by!r}.")
        try:
            allocation_list = lists.allocation_list_generate(
                site=site_row,
                generated_by=user,
                block_sizes=_sizes(block_sizes) if block_sizes else None,
                ratio=_ratio(ratio) if ratio else None,
                length=length,
                design_reason=design_reason,
            )
        except PermissionDenied:
            raise CommandError(f"{by} is not a data manager.") from None
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        segment = allocation_list.segments.get()
        self.stdout.write(f"Allocation list of {site_row.code} generated and sealed by {by}.")
        self.stdout.write(
            f"  ratio {allocation_list.ratio_intervention}:{allocation_list.ratio_control}, "
            f"block sizes {', '.join(map(str, segment.block_sizes))}, {allocation_list.length} entries"
        )
        self.stdout.write(f"  predictability (convergence strategy): {list_predictability(allocation_list):.1%}")
        self.stdout.write(self.style.SUCCESS(f"  SHA-256 commitment: {allocation_list.commitment}"))
