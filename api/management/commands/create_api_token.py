"""`manage.py create_api_token <username> --name ... --scope ...`: a personal API token for a script or CI, made by
the same service as the profile page's (`api.tokens.token_create`: the user's roles bound its scopes). The key is
printed once, alone on stdout, so that a script can capture it: KEY=$(manage.py create_api_token ...)."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from api.models import Scope
from api.tokens import DEFAULT_DAYS, token_create


class Command(BaseCommand):
    help = "Make a personal API token for a user and print its key once (read is always held)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="What uses the token, to tell it apart later.")
        parser.add_argument(
            "--scope",
            action="append",
            default=[],
            choices=[scope for scope in Scope.values if scope != Scope.READ],
            help="A scope beyond read (repeat for several): write, randomise, export.",
        )
        parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help=f"Days until it expires ({DEFAULT_DAYS}).")

    def handle(self, *args, username: str, name: str, scope: list[str], days: int, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        try:
            new = token_create(user=user, name=name, scopes=[Scope.READ, *scope], days=days)
        except PermissionDenied:
            raise CommandError(f"{username} has no role in the trial, so no token.") from None
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stderr.write(
            f"Token {new.token.name!r} of {username} ({', '.join(new.token.scopes)}), expires "
            f"{new.token.expires_at:%Y-%m-%d}. The key is shown only now:"
        )
        self.stdout.write(new.key)
