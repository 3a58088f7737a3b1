"""Every user-facing string has its Norwegian Bokmål text, and a Norwegian user gets it.

The catalogue is locale/nb/LC_MESSAGES/django.po; `make messages` re-extracts and compiles it.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polib
from django.conf import settings
from django.urls import reverse

from conftest import require
from families.tests.factories import days_ago, register_family

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "nb" / "LC_MESSAGES"
NORWEGIAN_BROWSER = "nb-NO,nb;q=0.9,no;q=0.8,en;q=0.5"

# What `make messages` leaves out of the extraction; tests are not user-facing.
NOT_EXTRACTED = [".venv", "staticfiles", "var", "tests"]
# Placeholders a translation must keep: %(name)s and %(n)d from Python, {{ name }} from templates.
PLACEHOLDER = re.compile(r"%\(\w+\)[sdfi]|\{\{\s*[\w.]+\s*\}\}")


def _copy_of_the_project(destination: Path) -> None:
    """The project's sources and catalogue in a scratch directory, so that extraction there never
    writes into the working tree (makemessages writes a temporary .py beside each template)."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.sqlite3", "node_modules", *NOT_EXTRACTED)
    for entry in Path(settings.BASE_DIR).iterdir():
        if entry.name.startswith(".") or entry.name in NOT_EXTRACTED:
            continue
        if entry.is_dir():
            shutil.copytree(entry, destination / entry.name, ignore=skip)
        elif entry.suffix == ".py":
            shutil.copy2(entry, destination / entry.name)


def _extract_current_strings(workdir: Path) -> polib.POFile:
    """Merge the project's current translatable strings into a copy of the Norwegian catalogue."""
    _copy_of_the_project(workdir)
    environment = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    # Without settings, makemessages writes to ./locale (the copy), never to settings.LOCALE_PATHS.
    command = [sys.executable, "-m", "django", "makemessages", "-l", "nb", "--no-obsolete"]
    command += [f"--ignore={pattern}" for pattern in NOT_EXTRACTED]
    result = subprocess.run(command, cwd=workdir, env=environment, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"makemessages failed:\n{result.stdout}\n{result.stderr}"
    return polib.pofile(str(workdir / "locale" / "nb" / "LC_MESSAGES" / "django.po"))


def _describe(entry: polib.POEntry) -> str:
    where = ", ".join(f"{path}:{line}" for path, line in entry.occurrences[:3])
    return f"  {entry.msgid!r} ({where})"


def _translations(catalogue: polib.POFile | polib.MOFile) -> dict:
    """msgid → what a Norwegian user reads, for the entries that reach the compiled catalogue."""
    result = {}
    for entry in catalogue:
        if not entry.msgid or entry.obsolete or "fuzzy" in entry.flags:
            continue
        key = (entry.msgctxt, entry.msgid, entry.msgid_plural)
        result[key] = tuple(sorted(entry.msgstr_plural.items())) if entry.msgid_plural else entry.msgstr
    return result


def test_it_has_norwegian_for_every_string_in_the_code_and_templates(tmp_path):
    require(shutil.which("xgettext") is not None, "needs GNU gettext (xgettext) to extract the strings")
    catalogue = _extract_current_strings(tmp_path)

    missing = [entry for entry in catalogue if not entry.obsolete and not entry.translated()]
    assert not missing, (
        f"{len(missing)} string(s) have no Norwegian Bokmål text yet (or a fuzzy one to check). Run "
        "`make messages`, translate them in locale/nb/LC_MESSAGES/django.po and compile again:\n"
        + "\n".join(_describe(entry) for entry in missing)
    )
    assert not catalogue.metadata_is_fuzzy, "The catalogue's header is marked fuzzy."
    assert catalogue.metadata["Language"] == "nb"
    assert catalogue.metadata["Plural-Forms"].replace(" ", "") == "nplurals=2;plural=(n!=1);"


def test_it_keeps_every_placeholder_in_the_norwegian():
    catalogue = polib.pofile(str(CATALOGUE / "django.po"))
    broken = []
    for entry in catalogue.translated_entries():
        if entry.msgid_plural:
            pairs = [
                (entry.msgid if form == 0 else entry.msgid_plural, text) for form, text in entry.msgstr_plural.items()
            ]
        else:
            pairs = [(entry.msgid, entry.msgstr)]
        for english, norwegian in pairs:
            if sorted(PLACEHOLDER.findall(english)) != sorted(PLACEHOLDER.findall(norwegian)):
                broken.append(f"  {english!r} → {norwegian!r}")
    assert not broken, "These translations lose or change a placeholder:\n" + "\n".join(broken)


def test_its_catalogue_compiles():
    # msgfmt checks what polib does not: a python-format msgid ("% of" reads as "% o") needs a msgstr whose
    # directives match, else compilemessages fails and the next `make messages` leaves the old .mo behind.
    require(shutil.which("msgfmt") is not None, "needs GNU gettext (msgfmt) to compile the catalogue")
    result = subprocess.run(
        ["msgfmt", "--check", "--output-file=/dev/null", str(CATALOGUE / "django.po")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"locale/nb/LC_MESSAGES/django.po does not compile:\n{result.stderr}"


def test_it_ships_a_compiled_catalogue_that_matches_the_translations():
    po = polib.pofile(str(CATALOGUE / "django.po"))
    mo_path = CATALOGUE / "django.mo"
    assert mo_path.exists(), "locale/nb/LC_MESSAGES/django.mo is missing: run `make messages`."
    mo = polib.mofile(str(mo_path))

    written, compiled = _translations(po), _translations(mo)
    stale = sorted(
        {key[1] for key in written.keys() ^ compiled.keys()}
        | {key[1] for key in written.keys() & compiled.keys() if written[key] != compiled[key]}
    )
    assert not stale, (
        "django.mo is older than django.po: run `manage.py compilemessages -l nb`. Differing entries:\n"
        + "\n".join(f"  {msgid!r}" for msgid in stale)
    )


def test_it_speaks_norwegian_to_a_norwegian_browser(client, db):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE=NORWEGIAN_BROWSER)

    page = response.content.decode()
    assert '<html lang="nb">' in page
    assert "Logg inn" in page
    assert "Log in" not in page
    assert "Familiepartner-studien" in page


def test_it_speaks_english_to_an_english_browser(client, db):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")

    page = response.content.decode()
    assert '<html lang="en">' in page
    assert "Log in" in page
    assert "Logg inn" not in page


def test_it_shows_dates_as_day_month_year_in_norwegian(client, alice, oei):
    family = register_family(site=oei, by=alice, referral_days_ago=40)
    client.force_login(alice)

    page = client.get(reverse("families:list"), HTTP_ACCEPT_LANGUAGE=NORWEGIAN_BROWSER).content.decode()

    assert family.study_id in page
    assert days_ago(40).strftime("%d.%m.%Y") in page
    assert days_ago(40).isoformat() not in page
    assert "Henvisningsdato" in page


def test_it_shows_dates_as_iso_in_english(client, alice, oei):
    family = register_family(site=oei, by=alice, referral_days_ago=40)
    client.force_login(alice)

    page = client.get(reverse("families:list"), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert family.study_id in page
    assert days_ago(40).isoformat() in page
    assert days_ago(40).strftime("%d.%m.%Y") not in page
    assert "Referral date" in page


def test_it_switches_to_norwegian_from_the_language_menu(client, db):
    login = reverse("login")
    assert "Log in" in client.get(login, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    response = client.post(reverse("set_language"), {"language": "nb", "next": login}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 302
    assert response["Location"] == login
    page = client.get(login, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="nb">' in page
    assert "Logg inn" in page


def _language_menu(page: str) -> dict[str, str]:
    menu = re.search(r'<select[^>]*name="language".*?</select>', page, re.S)
    assert menu, "The page has no language menu."
    return dict(re.findall(r'<option value="(\w+)"[^>]*>\s*(.*?)\s*</option>', menu.group(0)))


def test_it_names_each_language_in_that_language_in_the_menu(client, db):
    """Someone who cannot read the page's current language still finds their own in the menu."""
    in_english = _language_menu(client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en").content.decode())
    in_norwegian = _language_menu(client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="nb").content.decode())

    assert in_english == in_norwegian
    assert in_english["en"] == "English"
    assert in_english["nb"].lower().startswith("norsk")
