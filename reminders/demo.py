"""The demo trial's reminders (trial.demo): one sweep as of today, after the other apps' steps, so that the demo
users' inboxes hold reminders (and, once delivered, the mail files)."""

from reminders import services
from trial.demo import Demo


def load_demo_reminders(demo: Demo) -> str:
    result = services.sweep()
    kinds = ", ".join(f"{count} {code}" for code, count in sorted(result.made.items())) or "none due today"
    return f"Reminders: {result.total} in the outbox ({kinds})."
