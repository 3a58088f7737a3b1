"""Personal API tokens (docs/api.md): a user's key for scripts, stored hashed, with a name, scopes and an expiry."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords


class Scope(models.TextChoices):
    """What a token may do, always within its user's own rights (`api.tokens.scopes_for`). Every token reads."""

    READ = "read", _("Read")
    WRITE = "write", _("Register, screen and record assessments")
    RANDOMISE = "randomise", _("Randomise")
    EXPORT = "export", _("Download datasets and the audit log")


class ApiToken(models.Model):
    """One personal token. The secret is shown once, when it is made; only its SHA-256 is kept (the secret is 32
    random bytes, so a fast hash is enough: nothing to guess). `prefix` finds the row without scanning hashes, and
    is what the user sees afterwards to tell their tokens apart."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens", verbose_name=_("user")
    )
    name = models.CharField(_("name"), max_length=64)
    prefix = models.CharField(_("prefix"), max_length=12, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    may_write = models.BooleanField(_("register, screen and record assessments"), default=False)
    may_randomise = models.BooleanField(_("randomise"), default=False)
    may_export = models.BooleanField(_("download datasets and the audit log"), default=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    expires_at = models.DateTimeField(_("expires at"))
    # Written at most once a minute, without a history row (api.authentication).
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        editable=False,
        verbose_name=_("revoked by"),
    )
    history = HistoricalRecords(excluded_fields=["key_hash", "last_used_at"])

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        constraints = [
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("created_at")), name="api_token_expires_later"),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True, revoked_by__isnull=True)
                | Q(revoked_at__isnull=False, revoked_by__isnull=False),
                name="api_token_revoked_with_who",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="api_token_named"),
            # A user tells their live tokens apart by name.
            models.UniqueConstraint(
                fields=["user", "name"], condition=Q(revoked_at__isnull=True), name="api_token_live_name_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def scopes(self) -> list[str]:
        held = [Scope.READ]
        held += [Scope.WRITE] if self.may_write else []
        held += [Scope.RANDOMISE] if self.may_randomise else []
        held += [Scope.EXPORT] if self.may_export else []
        return [str(scope) for scope in held]

    @property
    def scope_labels(self) -> list[str]:
        labels = dict(Scope.choices)
        return [str(labels[scope]) for scope in self.scopes]

    def is_live(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and self.expires_at > now

    @property
    def state(self) -> str:
        """ "live", "expired" or "revoked" (a revoked token that has also expired is revoked)."""
        if self.revoked_at is not None:
            return "revoked"
        return "live" if self.is_live() else "expired"
