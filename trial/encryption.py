"""Encryption at rest for direct identifiers (names, national identity numbers, phone, address).

Values are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under the keys in ENCRYPTION_KEYS;
the first key encrypts, all of them decrypt, so a key can be rotated without downtime
(`manage.py rotate_encryption_key` is left to a later issue; see docs/decisions.md).
The database, its backups and the audit tables only ever hold ciphertext.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "No encryption key: set ENCRYPTION_KEYS, or run `manage.py ensure_encryption_key` in development."
        )
    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.ENCRYPTION_KEYS))


class EncryptedTextField(models.TextField):
    """A text field whose value is stored encrypted; it cannot be searched or ordered in SQL."""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return fernet().encrypt(value.encode()).decode()

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        try:
            return fernet().decrypt(value.encode()).decode()
        except InvalidToken:
            raise ImproperlyConfigured("A stored identifier cannot be decrypted with ENCRYPTION_KEYS.") from None
