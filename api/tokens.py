"""Making, finding and revoking personal API tokens (docs/api.md, "Tokens").

A token reads `fpt_<prefix>_<secret>`: the prefix finds the row, the secret's SHA-256 is compared in constant time.
A token's scopes are never wider than its user's roles allow (`scopes_for`), and every call checks the user's
roles again, so a token of a user who lost a role loses that right too."""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from api.models import ApiToken, Scope
from trial.roles import Role, has_role, is_blinded, roles_of

TOKEN_TAG = "fpt"  # noqa: S105 (the keys' visible tag, no secret)
DEFAULT_DAYS = 90
MAX_DAYS = 365
NAME_MAX_LENGTH = ApiToken._meta.get_field("name").max_length or 64
# What a key looks like: anything else (another tag, non-ASCII, a NUL byte) is refused before the database is asked.
KEY_PATTERN = re.compile(rf"{TOKEN_TAG}_(?P<prefix>[0-9a-f]{{8}})_[A-Za-z0-9_-]{{43}}")
# A new prefix is drawn again when it is taken (4 random bytes: a collision is rare, never an error for the user).
PREFIX_ATTEMPTS = 5
# last_used_at is written at most this often: a script's every call must not write a row.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def scopes_for(user: User) -> list[str]:
    """The scopes `user` may give a token: read for anyone with a role; the others by role (as the pages allow)."""
    if not roles_of(user):
        return []
    scopes = [str(Scope.READ)]
    if has_role(user, Role.RESEARCHER, Role.OUTCOME_ASSESSOR):
        scopes.append(str(Scope.WRITE))
    if has_role(user, Role.RESEARCHER) and not is_blinded(user):
        scopes.append(str(Scope.RANDOMISE))
    if has_role(user, Role.DATA_MANAGER, Role.PRINCIPAL_INVESTIGATOR, Role.ADMINISTRATOR):
        scopes.append(str(Scope.EXPORT))
    return scopes


def may_revoke_any_token(user: User) -> bool:
    """Administrators (and superusers, who reach the admin) revoke anyone's token (in the admin)."""
    return bool(user.is_active and (has_role(user, Role.ADMINISTRATOR) or user.is_superuser))


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    # The whole key, shown to the user once and never stored.
    key: str


def token_create(*, user: User, name: str, scopes: list[str], days: int = DEFAULT_DAYS) -> NewToken:
    """A new token of `user`: its key is returned once and only its SHA-256 is stored. Read is always held; the
    other `scopes` must be among those `user`'s roles allow (`scopes_for`)."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": _("Give the token a name, so that you know later what uses it.")})
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError({"name": _("A token's name has at most %(max)d characters.") % {"max": NAME_MAX_LENGTH}})
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError({"days": _("A token lasts from 1 to %(max)d days.") % {"max": MAX_DAYS}})
    allowed = scopes_for(user)
    if not allowed:
        raise PermissionDenied
    wider = sorted(set(scopes) - set(allowed))
    if wider:
        raise ValidationError(
            {"scopes": _("Your roles do not allow these scopes: %(scopes)s.") % {"scopes": ", ".join(wider)}}
        )
    for _attempt in range(PREFIX_ATTEMPTS):
        prefix = secrets.token_hex(4)
        key = f"{TOKEN_TAG}_{prefix}_{secrets.token_urlsafe(32)}"
        now = timezone.now()
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    user=user,
                    name=name,
                    prefix=prefix,
                    key_hash=_hash(key),
                    may_write=Scope.WRITE in scopes,
                    may_randomise=Scope.RANDOMISE in scopes,
                    may_export=Scope.EXPORT in scopes,
                    created_at=now,
                    expires_at=now + timedelta(days=days),
                )
        except IntegrityError:
            # Two unique constraints can refuse the row: the prefix (draw another) or a live token's name.
            if ApiToken.objects.filter(prefix=prefix).exists():
                continue
            raise ValidationError({"name": _("You already have a token with this name; choose another.")}) from None
        return NewToken(token, key)
    raise RuntimeError("no free token prefix after several attempts")  # 2^32 prefixes: not in this trial's life


def token_revoke(*, token: ApiToken, revoked_by: User) -> ApiToken:
    """Its owner revokes their own token; an administrator anyone's. Revoking twice changes nothing."""
    if token.user_id != revoked_by.pk and not may_revoke_any_token(revoked_by):
        raise PermissionDenied
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.revoked_by = revoked_by
            token.save(update_fields=["revoked_at", "revoked_by"])
    return token


def token_for_key(key: str) -> ApiToken | None:
    """The token a key names, live or not (the caller tells expired and revoked apart), or None."""
    match = KEY_PATTERN.fullmatch(key)
    if match is None:
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=match["prefix"]).first()
    if token is None or not hmac.compare_digest(token.key_hash, _hash(key)):
        return None
    return token


def note_use(token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
