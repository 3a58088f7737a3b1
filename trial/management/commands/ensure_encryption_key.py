from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the development encryption key file (var/encryption.key) if there is none."

    def handle(self, *args, **options):
        key_file = settings.VAR_DIR / "encryption.key"
        if key_file.exists():
            self.stdout.write(f"Using the encryption key in {key_file}.")
            return
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(Fernet.generate_key().decode() + "\n")
        self.stdout.write(
            self.style.WARNING(
                f"Created a development encryption key in {key_file}. Lose it and the demo's identifiers are lost too."
            )
        )
