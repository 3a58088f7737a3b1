"""Blinding: every page reachable by an outcome assessor, crawled, contains no arm label in either language.

The assessor (carol, at Øvre Eiker) logs in and follows every same-site link from "/", in English and in
Norwegian: the family list with each of its filters and pages, every family's page, and whatever those
link to. No page may show a family's arm, its code, the allocation section, a "randomised in error" note
or an unblinding's reason; nor the Family Partner's work, which only intervention families have (docs/trial-rules.md:
partner names, contact logs, intervention dates): no Family Partner section, no partner's name, no contact
or its notes, no intervention date or end reason, no hours, no link to the caseload or the weekly hours.
The detector is proved on a researcher's crawl (who does see the arms and the work), and on carol's own
crawl once the principal investigator has unblinded her for one family.
"""

import html
import json
import re
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser
from urllib.parse import parse_qs, parse_qsl, urlencode, urljoin, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import formats, timezone, translation

from families import services as family_services
from families.models import Family, FamilyStatus, WithdrawalReason
from families.tests.factories import days_ago, family_in_state, register_family
from followups import services as followup_services
from followups.models import Assessment
from followups.schedule import windows_from_settings
from followups.tests.factories import record, record_baseline
from randomization import lists, services
from randomization.models import Allocation, Arm, Unblinding
from trial.models import TrialSettings
from trial.roles import Role
from trial.tests.factories import UserFactory
from visits import services as visits_services
from visits.models import Assignment, Contact, EndReason, InterventionPeriod
from visits.tests.factories import log_contact, partner

LANGUAGES = ("en", "nb")
ANNOTATION_REASON = "Randomised the sibling's referral instead of this one"
OTHER_UNBLINDING_REASON = "Acute safety concern reported by the municipality to olga"
CAROL_UNBLINDING_REASON = "Serious adverse event: carol must know the arm to assess it"
# Free text written after randomisation that names the arm, as people write it (docs/trial-rules.md).
WITHDRAWAL_DETAILS = "Did not want the Family Partner visits any more; would rather have been in the control group"
# Details of a follow-up written after randomisation that name the arm's work (followups: hidden from assessors).
FOLLOW_UP_DETAILS = "Mother talked about the Family Partner visits all through the questionnaires"
# The researcher who randomises every family at Øvre Eiker, and does nothing else there.
RANDOMISER_FIRST_NAME, RANDOMISER_LAST_NAME = "Runar", "Loddtrekker"
# An arm's code as a value (value="control", >intervention<, data-x='control'), but not Bootstrap's
# "form-control" nor "aria-controls".
ARM_CODES = [
    re.compile(r"\bintervention\b", re.IGNORECASE),
    re.compile(r"[\"'>=/]control[\"'<&/]", re.IGNORECASE),
]
# The Family Partner's work on the intervention families (docs/trial-rules.md: it reveals the arm).
PARTNER_FIRST_NAME, PARTNER_LAST_NAME = "Fenna", "Brattvold-Aasen"
CONTACT_NOTES = "Mother worried about the eviction notice; we called the housing office together"
END_DETAILS = "The family asked to pause until the baby is born"
# A voided contact's reason is free text written after randomisation (visits' voids).
VOID_REASON = "Logged twice: the Family Partner home visit belonged to the intervention family next door"
# Markers of the visits app's templates: the family page's section, the period, the partner, contacts and
# their notes, the hours per week, the waiting list, the researcher's slot banner, the weekly hours table.
WORK_MARKERS = [
    "data-intervention-section",
    "data-period",
    "data-partner",
    "data-contact",
    "data-notes",
    "data-week",
    "data-hours",
    "data-waiting",
    "data-slot-alert",
    "data-dose-table",
]
# The visits app's addresses (in a link or a form's action): the partner's pages, the caseload and weekly
# hours, assigning a partner and ending an intervention.
WORK_PATHS = ["/partner/", "/caseload/", "/family-partner/", "/end-intervention/"]
# Far more than an assessor can reach in this trial: a crawl that runs away (a link that grows its own
# query string) fails instead of running for ever.
MAX_PAGES = 700  # with the follow-up grid, its filters and every assessment's page (issue 10)


def in_language(language: str, text) -> str:
    with translation.override(language):
        return str(text) if not isinstance(text, str) else translation.gettext(text)


def arm_labels() -> dict[str, set[str]]:
    """Arm code → what a reader of either language sees for it."""
    return {arm.value: {in_language(language, arm.label) for language in LANGUAGES} for arm in Arm}


def arms_shown(body: str) -> set[str]:
    """The arms (codes) a page names by their label, in either language."""
    text = html.unescape(body).casefold()
    return {arm for arm, labels in arm_labels().items() if any(label.casefold() in text for label in labels)}


def arm_traces(body: str) -> list[str]:
    """Everything on a page (its raw HTML included) that shows or gives away an arm."""
    text = html.unescape(body)
    found = [label for labels in arm_labels().values() for label in labels if label.casefold() in text.casefold()]
    for pattern in ARM_CODES:
        found += [match.group(0) for source in (body, text) for match in pattern.finditer(source)]
    found += [marker for marker in ("data-arm", "data-allocation-section") if marker in body]
    return sorted(set(found))


def blinding_leaks(body: str) -> list[str]:
    """An arm, or what is written about one family's allocation only for those who may see the arm."""
    text = html.unescape(body).casefold()
    found = arm_traces(body)
    secrets = {in_language(language, "Randomised in error") for language in LANGUAGES}
    secrets |= {ANNOTATION_REASON, OTHER_UNBLINDING_REASON, CAROL_UNBLINDING_REASON, "data-annotation"}
    secrets |= {WITHDRAWAL_DETAILS, RANDOMISER_LAST_NAME, FOLLOW_UP_DETAILS}
    found += [secret for secret in sorted(secrets) if secret.casefold() in text]
    return found + work_traces(body)


def planned_ends() -> set[str]:
    """The intervention periods' planned ends, as either language writes a date. (Their starts and ends are
    the day of the randomisation, which an assessor may see.) A planned end that falls on a date of the follow-up
    schedule, which is the same in both arms and shown to assessors, gives nothing away: randomised on 1 December,
    the 11-month planned end and the opening of the 12-month window (30 days before 1 December) are both 1 November."""
    days = set(InterventionPeriod.objects.values_list("planned_end_on", flat=True)) - schedule_dates()
    return {date_in(language, day) for day in days for language in LANGUAGES}


def schedule_dates() -> set[date]:
    """Every date of every randomised family's follow-up windows (opening, target, closing)."""
    settings = TrialSettings.current()
    moments = Allocation.objects.values_list("randomised_at", flat=True)
    randomised_on = {timezone.localdate(moment) for moment in moments}
    windows = [window for day in randomised_on for window in windows_from_settings(day, settings)]
    return {day for window in windows for day in (window.opens_on, window.target_on, window.closes_on) if day}


def date_in(language: str, day: date) -> str:
    with translation.override(language):
        return formats.date_format(day, "SHORT_DATE_FORMAT")


def randomisation_times(body: str) -> list[str]:
    """Times of day shown on a day a family was randomised ("2026-03-12 10:41", "12.03.2026 10:41"): on a blinded
    user's page of a randomised family, or of the family list, they would give the randomisation's time."""
    days = {timezone.localtime(moment).date() for moment in Allocation.objects.values_list("randomised_at", flat=True)}
    found = []
    for day in days:
        for language in LANGUAGES:
            found += re.findall(rf"{re.escape(date_in(language, day))}\s+\d{{1,2}}[:.]\d{{2}}", html.unescape(body))
    return found


def work_traces(body: str) -> list[str]:
    """What a page shows of the Family Partner's work: the section, a partner, a contact, an intervention's
    dates or end, hours, a link to the work's pages, or the words "Family Partner" outside the trial's name.
    (A page's own address, in the language form, is no link: a refused page may name itself.)"""
    text = html.unescape(body)
    found = [marker for marker in WORK_MARKERS if marker in body]
    links = re.findall(r'(?:href|action)="([^"]*)"', body)
    found += [path for path in WORK_PATHS if any(path in link for link in links)]
    secrets = {PARTNER_LAST_NAME, CONTACT_NOTES, END_DETAILS, VOID_REASON, *planned_ends()}
    found += [secret for secret in sorted(secrets) if secret.casefold() in text.casefold()]
    # The trial's name and the arm's label (arm_traces' business) say "Family Partner" too.
    outside_the_name = text.casefold()
    names = {in_language(language, "Family Partner trial") for language in LANGUAGES}
    for name in sorted(names | {label for labels in arm_labels().values() for label in labels}, key=len, reverse=True):
        outside_the_name = outside_the_name.replace(name.casefold(), "")
    found += [
        word
        for word in sorted({in_language(language, "Family Partner") for language in LANGUAGES})
        if word.casefold() in outside_the_name
    ]
    return found


# --- The crawler ------------------------------------------------------------------------------------------


@dataclass
class Visit:
    url: str
    status: int
    body: str
    language: str


class _Links(HTMLParser):
    """The links of a page, and the choices of its GET forms' <select>s (the family list's filters)."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.choices: list[tuple[str, str, str]] = []  # (form action, select name, option value)
        self._form: tuple[str, str] | None = None  # (method, action)
        self._select = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "a" and "href" in attributes:
            self.hrefs.append(attributes["href"])
        elif tag == "form":
            self._form = (attributes.get("method", "get").lower(), attributes.get("action", ""))
        elif tag == "select":
            self._select = attributes.get("name", "")
        elif tag == "option" and self._form is not None and self._form[0] == "get" and self._select:
            value = attributes.get("value", "")
            if value:
                self.choices.append((self._form[1], self._select, value))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = ""


def _same_site(base: str, href: str) -> str | None:
    """The path and query that `href` leads to, or None for another site, a fragment, a file or a mail."""
    href = href.strip()
    if not href or href.startswith(("#", "mailto:", "tel:", "javascript:")):
        return None
    parts = urlsplit(urljoin(f"http://testserver{base}", href))
    if parts.scheme not in ("http", "https") or parts.netloc != "testserver":
        return None
    if parts.path.startswith(("/static/", "/media/")) or parts.path == "/accounts/logout/":
        return None
    # A return address ("next", the grid's filters carried to an assessment's page) changes nothing the page shows
    # but its links back: each page is crawled once, whatever page it was reached from.
    query = urlencode([(name, value) for name, value in parse_qsl(parts.query) if name != "next"])
    return parts.path + (f"?{query}" if query else "")


def _final_url(url: str, response) -> str:
    if response.redirect_chain:
        return _same_site(url, response.redirect_chain[-1][0]) or url
    return url


def set_language(client: Client, language: str) -> None:
    response = client.post("/i18n/setlang/", {"language": language, "next": "/"})
    assert response.status_code == 302, "Django's set_language answers with a redirect"


# The family list's filters (status, site, arm), its orders and its pages are each followed, and so is every pair
# of them (a count's link keeps the order and the arm), but not every combination of three or more: those would
# be thousands of pages of the same template.
MAX_LIST_CHOICES = 2


def _few_choices(target: str) -> bool:
    return len({name for name in parse_qs(urlsplit(target).query) if name != "page"}) <= MAX_LIST_CHOICES


def crawl(client: Client, *, language: str, start: str = "/") -> dict[str, Visit]:
    """Every page reachable by GET from `start` through same-site links and GET-form choices, in `language`."""
    set_language(client, language)
    queue, seen, visits = deque([start]), {start}, {}
    while queue:
        url = queue.popleft()
        response = client.get(url, follow=True)
        final = _final_url(url, response)
        body = response.content.decode(errors="replace")
        visits[url] = visits[final] = Visit(final, response.status_code, body, language)
        seen.add(final)
        assert len(visits) <= MAX_PAGES, f"the crawl ran away at {url}"
        if "html" not in response.get("Content-Type", ""):
            continue
        links = _Links()
        links.feed(body)
        targets = [_same_site(final, href) for href in links.hrefs]
        for action, name, value in links.choices:
            path = urlsplit(urljoin(f"http://testserver{final}", action or final)).path
            targets.append(f"{path}?{urlencode({name: value})}")
        for target in targets:
            if target is not None and target not in seen and _few_choices(target):
                seen.add(target)
                queue.append(target)
    return visits


def crawl_both_languages(client: Client) -> list[Visit]:
    return [visit for language in LANGUAGES for visit in crawl(client, language=language).values()]


def family_url(family: Family) -> str:
    return f"/families/{family.study_id}/"


def leaks_in(visits: list[Visit], *, except_urls: frozenset[str] = frozenset()) -> list[str]:
    return [
        f"  {visit.language} {visit.url}: {found}"
        for visit in visits
        if visit.url not in except_urls and (found := blinding_leaks(visit.body))
    ]


# --- The trial ----------------------------------------------------------------------------------------


@dataclass
class Trial:
    families: list[Family]  # every family at OEI
    randomised: list[Family]  # at OEI, in the order they were randomised
    annotated: Family
    withdrawn_after_randomisation: Family
    unblinded_for_olga: Family
    plain: list[Family]  # randomised, nothing else done
    other_site: Family  # randomised at LAR
    # The Family Partner's work, at OEI: an intervention family with its partner, contacts and a running
    # intervention; one whose intervention ended (with details); one withdrawn during its intervention; one
    # waiting for a partner; and a control family.
    with_partner: Family
    ended: Family
    withdrawn_during_intervention: Family
    waiting: Family
    control: Family
    arms: dict[str, str] = field(default_factory=dict)  # study ID → arm code


def _randomise(family: Family, *, by) -> str:
    if not Assessment.objects.filter(family=family, months=0, status="completed").exists():
        record_baseline(family)  # the trial's default rule: the baseline before the randomisation
    return services.family_randomise(family=family, confirmed_site=family.site, randomised_by=by).allocation.arm


@pytest.fixture
def olga(oei):
    """Another blinded outcome assessor at Øvre Eiker."""
    return UserFactory(username="olga", roles=[Role.OUTCOME_ASSESSOR], sites=[oei])


@pytest.fixture
def runar(oei):
    """The researcher who randomises the families at Øvre Eiker."""
    return UserFactory(
        username="runar",
        first_name=RANDOMISER_FIRST_NAME,
        last_name=RANDOMISER_LAST_NAME,
        roles=[Role.RESEARCHER],
        sites=[oei],
    )


@pytest.fixture
def trial(oei, lar, alice, bob, carol, olga, paula, dina, runar) -> Trial:
    oei_list = lists.allocation_list_generate(site=oei, generated_by=dina)
    lists.allocation_list_generate(site=lar, generated_by=dina)

    for state in ("referred", "eligible", "ineligible", "consented", "declined", "withdrawn"):
        family_in_state(state, site=oei, by=alice)
    # More than a page of the family list (25), so that its pagination is crawled too.
    for _ in range(20):
        register_family(site=oei, by=alice)

    randomised, arms = [], {}
    while len(randomised) < 5 or len(set(arms.values())) < 2:
        assert len(randomised) < oei_list.length, "the list gave only one arm from start to end"
        family = family_in_state("consented", site=oei, by=alice)
        arms[family.study_id] = _randomise(family, by=runar)
        randomised.append(family)

    annotated, withdrawn, unblinded_for_olga, *plain = randomised
    services.allocation_annotate(allocation=annotated.allocation, reason=ANNOTATION_REASON, annotated_by=alice)
    family_services.family_withdraw(
        family=withdrawn,
        withdrawn_on=days_ago(1),
        reason=WithdrawalReason.FAMILY_REQUEST,
        details=WITHDRAWAL_DETAILS,
        data_may_be_kept=True,
        recorded_by=alice,
        token=uuid.uuid4(),
    )
    services.family_unblind(family=unblinded_for_olga, user=olga, reason=OTHER_UNBLINDING_REASON, unblinded_by=paula)

    other_site = family_in_state("consented", site=lar, by=bob)
    arms[other_site.study_id] = _randomise(other_site, by=bob)

    with_partner, ended, withdrawn_during, waiting, control = _family_partner_work(
        oei, alice=alice, randomiser=runar, arms=arms, randomised=randomised
    )
    # Follow-ups recorded after the randomisation, with the assessor's guess of the arm (shown nowhere) and details
    # that name the arm's work (free text after randomisation: hidden); one booked.
    for family in (with_partner, control):
        record(
            Assessment.objects.get(family=family, months=3),
            by=olga,
            status="partly",
            done_on=days_ago(0),
            confirm_outside_window=True,
            details=FOLLOW_UP_DETAILS,
            arm_guess=Arm.INTERVENTION,
        )
    followup_services.assessment_book(
        assessment=Assessment.objects.get(family=plain[0], months=3), booked_on=days_ago(-2), booked_by=olga
    )

    assert set(arms[family.study_id] for family in randomised) == set(Arm.values), "both arms occur at OEI"
    return Trial(
        families=list(Family.objects.filter(site=oei)),
        randomised=[Family.objects.get(pk=family.pk) for family in randomised],
        annotated=annotated,
        withdrawn_after_randomisation=Family.objects.get(pk=withdrawn.pk),
        unblinded_for_olga=unblinded_for_olga,
        plain=plain,
        other_site=other_site,
        with_partner=with_partner,
        ended=ended,
        withdrawn_during_intervention=withdrawn_during,
        waiting=waiting,
        control=control,
        arms=arms,
    )


def _family_partner_work(oei, *, alice, randomiser, arms: dict[str, str], randomised: list[Family]) -> list[Family]:
    """Four new intervention families and a control one at OEI, and the Family Partner's work with them."""
    # Planned to last 11 months (not 12), so that a planned end never falls on a follow-up assessment's date.
    trial_settings = TrialSettings.current()
    trial_settings.intervention_expected_months = 11
    trial_settings.save()
    fenna = partner(oei, "fenna", first_name=PARTNER_FIRST_NAME, last_name=PARTNER_LAST_NAME)
    intervention, control = [], []
    while len(intervention) < 4 or not control:
        family = family_in_state("consented", site=oei, by=alice)
        arms[family.study_id] = _randomise(family, by=randomiser)
        randomised.append(family)
        (intervention if arms[family.study_id] == Arm.INTERVENTION else control).append(family)
    with_partner, ended, withdrawn_during, waiting = intervention[:4]
    for family in (with_partner, ended, withdrawn_during):
        visits_services.family_assign(family=family, partner=fenna, started_on=days_ago(0), assigned_by=alice)
        log_contact(family, by=fenna.user, notes=CONTACT_NOTES)
    log_contact(with_partner, by=fenna.user, kind="phone_video", duration_quarters=3, notes="")
    mistaken = log_contact(with_partner, by=fenna.user, kind="other", duration_quarters=2, notes="")
    visits_services.contact_void(contact=mistaken, voided_by=fenna.user, reason=VOID_REASON)
    visits_services.intervention_end(
        family=ended, ended_on=days_ago(0), reason=EndReason.OTHER, details=END_DETAILS, ended_by=alice
    )
    family_services.family_withdraw(
        family=withdrawn_during,
        withdrawn_on=days_ago(0),
        reason=WithdrawalReason.MOVED_AWAY,
        data_may_be_kept=True,
        recorded_by=alice,
        token=uuid.uuid4(),
    )
    assert InterventionPeriod.objects.filter(ended_on__isnull=False).count() == 2, "both interventions ended"
    assert list(Assignment.objects.filter(ended_on__isnull=True).values_list("family", flat=True)) == [with_partner.pk]
    assert Contact.objects.count() == 5
    return [Family.objects.get(pk=family.pk) for family in (with_partner, ended, withdrawn_during, waiting, control[0])]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- The tests ------------------------------------------------------------------------------------------


def test_it_looks_for_the_norwegian_arm_labels_as_well_as_the_english_ones(db):
    for arm in Arm:
        english, norwegian = in_language("en", arm.label), in_language("nb", arm.label)
        assert english in ("Family Partner intervention", "Usual child welfare services")
        assert norwegian != english, f"{english!r} has no Norwegian text, so the crawl looks for it only once"
    assert in_language("nb", "Randomised in error") != "Randomised in error"


def test_it_shows_a_blinded_assessor_no_arm_on_any_page_she_can_reach_in_either_language(carol, trial):
    visits = crawl_both_languages(logged_in(carol))

    leaks = leaks_in(visits)
    assert not leaks, "carol, a blinded assessor, is shown what reveals an arm:\n" + "\n".join(leaks)
    randomised_pages = {family_url(family) for family in trial.randomised}
    timed = [
        f"  {visit.language} {visit.url}: {found}"
        for visit in visits
        if (visit.url in randomised_pages or visit.url.startswith("/families/?") or visit.url == "/families/")
        and (found := randomisation_times(visit.body))
    ]
    assert not timed, "carol is shown the time of day of a randomisation:\n" + "\n".join(timed)

    visited = {(visit.language, visit.url) for visit in visits}
    for language in LANGUAGES:
        for family in trial.families:
            assert (language, family_url(family)) in visited, f"the {language} crawl never reached {family.study_id}"
        assert (language, family_url(trial.other_site)) not in visited, "carol reaches only her own site"
        filtered = {url for lang, url in visited if lang == language and "status=" in url}
        assert {f"/families/?status={status}" for status in FamilyStatus.values} <= filtered
        assert any("page=2" in url for lang, url in visited if lang == language), "the list's next page"
        # Follow-up: her worklist (her home), the grid with its filters, assessments' pages, a booking's contact.
        assert {(language, "/followups/worklist/"), (language, "/followups/")} <= visited
        assert any(url.startswith("/followups/?state=") for lang, url in visited if lang == language)
        assert any(re.match(r"/followups/OEI-\d+/3/", url) for lang, url in visited if lang == language)
    assert len(visited) >= 2 * (len(trial.families) + len(FamilyStatus.values) + 2)

    refused = [f"  {visit.language} {visit.url}: {visit.status}" for visit in visits if visit.status != 200]
    assert not refused, "carol is shown links she may not follow:\n" + "\n".join(refused)
    work_pages = sorted({url for _, url in visited if any(path in url for path in WORK_PATHS)})
    assert not work_pages, f"carol reaches the Family Partner's work: {work_pages}"
    english = [visit for visit in visits if visit.language == "en"]
    norwegian = [visit for visit in visits if visit.language == "nb"]
    assert all('<html lang="en">' in visit.body for visit in english)
    assert all('<html lang="nb">' in visit.body for visit in norwegian), "the Norwegian crawl is in Norwegian"


def test_it_shows_a_blinded_assessor_that_a_family_is_randomised_but_not_its_arm(client, carol, trial):
    client.force_login(carol)
    for language in LANGUAGES:
        set_language(client, language)
        for family in trial.plain:
            page = client.get(family_url(family)).content.decode()
            assert f'data-status="{FamilyStatus.RANDOMISED}"' in page
            assert in_language(language, FamilyStatus.RANDOMISED.label) in page
            assert not blinding_leaks(page), (family.study_id, language, blinding_leaks(page))


RANDOMISATION_PAGES = [
    "/randomisation/",
    "/randomisation/new/",
    "/randomisation/OEI/",
    "/randomisation/LAR/",
    "/randomisation/OEI/commitment/",
    "/randomisation/OEI/list.txt",
    "/randomisation/OEI/extend/",
    "/randomisation/OEI/unseal/",
]
FAMILY_RANDOMISATION_PAGES = ["randomise/", "randomised-in-error/", "unblind/"]


def test_it_refuses_a_blinded_assessor_every_randomisation_page_without_showing_an_arm(client, carol, oei, trial):
    consented = Family.objects.filter(site=oei, status=FamilyStatus.CONSENTED).first()
    families = [consented, *trial.randomised, trial.other_site]
    urls = RANDOMISATION_PAGES + [
        family_url(family) + page for family in families for page in FAMILY_RANDOMISATION_PAGES
    ]
    allocations, unblindings = Allocation.objects.count(), Unblinding.objects.count()
    client.force_login(carol)

    answers = []
    for language in LANGUAGES:
        set_language(client, language)
        for url in urls:
            answers.append((language, "GET", url, client.get(url)))
        for url in ["/randomisation/OEI/verify/", "/randomisation/OEI/unseal/agree/"]:
            answers.append((language, "POST", url, client.post(url)))
        for family in families:
            site = family.site.code
            answers.append(
                (
                    language,
                    "POST",
                    family_url(family) + "randomise/",
                    client.post(family_url(family) + "randomise/", {"site": site, "confirm": "on"}),
                )
            )
            answers.append(
                (
                    language,
                    "POST",
                    family_url(family) + "unblind/",
                    client.post(family_url(family) + "unblind/", {"user": carol.pk, "reason": "I want to know"}),
                )
            )

    not_refused = [
        f"  {lang} {method} {url}: {r.status_code}"
        for lang, method, url, r in answers
        if r.status_code not in (403, 404)
    ]
    assert not not_refused, "carol is not refused:\n" + "\n".join(not_refused)
    leaks = [f"  {lang} {url}: {found}" for lang, _, url, r in answers if (found := blinding_leaks(r.content.decode()))]
    assert not leaks, "a refusal shows carol an arm:\n" + "\n".join(leaks)
    for language in LANGUAGES:
        set_language(client, language)
        admin = client.get("/admin/randomization/allocation/", follow=True)
        assert admin.redirect_chain and "/admin/login/" in admin.redirect_chain[-1][0], "carol is no staff"
        assert not blinding_leaks(admin.content.decode())
    assert Allocation.objects.count() == allocations
    assert Unblinding.objects.count() == unblindings
    assert Family.objects.get(pk=consented.pk).status == FamilyStatus.CONSENTED


def work_url(family: Family) -> str:
    return reverse("visits:family", kwargs={"study_id": family.study_id})


def family_partner_pages(family: Family) -> list[str]:
    return [
        work_url(family),
        reverse("visits:contact_new", kwargs={"study_id": family.study_id}),
        reverse("visits:assign", kwargs={"study_id": family.study_id}),
        reverse("visits:end", kwargs={"study_id": family.study_id}),
    ]


def refusal_leaks(response, url: str) -> list[str]:
    """What a refusal shows (its own address, in the language form, taken out: "/end-intervention/" is no arm)."""
    return blinding_leaks(response.content.decode().replace(url, "<this page>"))


def without_own_address(response, family: Family) -> str:
    """A page with its family's study ID (in the language form's "next") and its CSRF token taken out."""
    page = response.content.decode().replace(family.study_id, "<study id>")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)


def test_it_refuses_a_blinded_assessor_every_family_partner_page_alike_for_both_arms(client, carol, trial):
    contact = Contact.objects.get(family=trial.with_partner, kind="home_visit")  # the one with notes
    voided = Contact.objects.get(family=trial.with_partner, voided_at__isnull=False)
    partner_profile = Assignment.objects.get(family=trial.with_partner, ended_on__isnull=True).partner
    records = (Contact.objects.count(), Assignment.objects.count(), InterventionPeriod.objects.count())
    client.force_login(carol)

    for language in LANGUAGES:
        set_language(client, language)
        for url in [
            reverse("visits:partner_home"),
            reverse("visits:caseload"),
            reverse("visits:dose"),
            reverse("visits:contact_edit", kwargs={"pk": contact.pk}),
            reverse("visits:contact_void", kwargs={"pk": voided.pk}),
        ]:
            response = client.get(url)
            assert response.status_code in (403, 404), (language, url, response.status_code)
            assert not refusal_leaks(response, url), (language, url)
        for url, data in [
            (reverse("visits:contact_edit", kwargs={"pk": contact.pk}), {"notes": "x"}),
            (reverse("visits:contact_void", kwargs={"pk": contact.pk}), {"reason": "x"}),
            (reverse("visits:partner_status", kwargs={"pk": partner_profile.pk}), {"status": "on_leave"}),
        ]:
            response = client.post(url, data)
            assert response.status_code in (403, 404), (language, "POST", url, response.status_code)
            assert not refusal_leaks(response, url), (language, "POST", url)
        # The work's pages answer an intervention family as they answer a control family: the same status
        # and the same page, so that not even a refusal tells the arm.
        for intervention in (trial.with_partner, trial.ended, trial.waiting):
            answers = {}
            for family in (intervention, trial.control):
                for index, url in enumerate(family_partner_pages(family)):
                    get, post = client.get(url), client.post(url, {"partner": partner_profile.pk, "notes": "x"})
                    for method, response in (("GET", get), ("POST", post)):
                        assert response.status_code in (403, 404), (language, method, url, response.status_code)
                        assert not refusal_leaks(response, url), (language, method, url)
                        answers.setdefault((index, method), []).append(
                            (response.status_code, without_own_address(response, family))
                        )
            different = [key for key, (first, second) in answers.items() if first != second]
            assert not different, f"carol can tell {intervention.study_id} from a control family: {different}"

    assert (Contact.objects.count(), Assignment.objects.count(), InterventionPeriod.objects.count()) == records
    assert Contact.objects.get(pk=contact.pk).notes == CONTACT_NOTES
    assert Contact.objects.get(pk=contact.pk).voided_at is None


def test_it_finds_the_arms_and_the_family_partner_work_on_a_researchers_crawl_so_the_detector_works(alice, trial):
    visits = crawl_both_languages(logged_in(alice))

    for language in LANGUAGES:
        pages = {visit.url: visit for visit in visits if visit.language == language}
        for family in trial.randomised:
            page = pages.get(family_url(family))
            assert page is not None, f"alice's {language} crawl never reached {family.study_id}"
            assert arms_shown(page.body) == {trial.arms[family.study_id]}, (family.study_id, language)
            assert "data-arm" in page.body
            assert arm_traces(page.body)
        annotated = pages[family_url(trial.annotated)].body
        assert in_language(language, "Randomised in error") in annotated
        assert ANNOTATION_REASON in html.unescape(annotated)
        # Free text written after randomisation, who randomised and when: alice reads them, so the crawl would
        # find them on carol's pages.
        withdrawn = pages[family_url(trial.withdrawn_after_randomisation)].body
        assert WITHDRAWAL_DETAILS in html.unescape(withdrawn)
        assert WITHDRAWAL_DETAILS in blinding_leaks(withdrawn)
        for family in trial.plain:
            body = pages[family_url(family)].body
            assert f"{RANDOMISER_FIRST_NAME} {RANDOMISER_LAST_NAME}" in body
            assert randomisation_times(body), (family.study_id, language)
        for family in trial.families:
            if family not in trial.randomised:
                page = pages[family_url(family)].body
                assert not arms_shown(page) and "data-arm" not in page, (family.study_id, language)

        # The Family Partner's work: alice, a researcher at OEI, sees it where the crawl would look for it.
        planned_end = InterventionPeriod.objects.get(family=trial.with_partner).planned_end_on
        with_partner = html.unescape(pages[family_url(trial.with_partner)].body)
        assert "data-intervention-section" in with_partner
        assert f"{PARTNER_FIRST_NAME} {PARTNER_LAST_NAME}" in with_partner
        assert date_in(language, planned_end) in with_partner
        assert work_url(trial.with_partner) in with_partner
        assert in_language(language, "Family Partner") in work_traces(with_partner), "the section's heading"
        work = pages.get(work_url(trial.with_partner))
        assert work is not None, f"alice's {language} crawl never reached the work page of {trial.with_partner}"
        assert CONTACT_NOTES in html.unescape(work.body)
        assert VOID_REASON in html.unescape(work.body), "a voided contact's reason, to the site's researchers"
        assert work.body.count("data-contact=") == 3
        assert END_DETAILS in html.unescape(pages[family_url(trial.ended)].body)
        assert "data-period" in pages[family_url(trial.withdrawn_during_intervention)].body
        assert "data-waiting" in pages[family_url(trial.waiting)].body
        assert {reverse("visits:caseload"), reverse("visits:dose")} <= set(pages), "the caseload and weekly hours"
        assert "data-slot-alert" in pages[family_url(trial.control)].body, "a family waits, fenna has a free slot"
        control = html.unescape(pages[family_url(trial.control)].body)
        assert "data-intervention-section" not in control and PARTNER_LAST_NAME not in control
        assert work_traces(with_partner) and work_traces(work.body)


def test_it_shows_the_arm_of_one_family_to_an_assessor_unblinded_for_it_and_no_other(client, carol, paula, trial):
    unblinded = trial.plain[0]
    services.family_unblind(family=unblinded, user=carol, reason=CAROL_UNBLINDING_REASON, unblinded_by=paula)
    # Unblinded for an intervention family too: she learns its arm, not its Family Partner's work.
    services.family_unblind(family=trial.with_partner, user=carol, reason=CAROL_UNBLINDING_REASON, unblinded_by=paula)

    visits = crawl_both_languages(logged_in(carol))

    for family in (unblinded, trial.with_partner):
        unblinded_pages = [visit for visit in visits if visit.url == family_url(family)]
        assert len(unblinded_pages) == len(LANGUAGES)
        for visit in unblinded_pages:
            assert arms_shown(visit.body) == {trial.arms[family.study_id]}, visit.language
            assert "data-arm" in visit.body
            assert work_traces(visit.body) == [], (family.study_id, visit.language)
    leaks = leaks_in(visits, except_urls=frozenset({family_url(unblinded), family_url(trial.with_partner)}))
    assert not leaks, "carol sees the arm of a family she was not unblinded for:\n" + "\n".join(leaks)
    assert {family_url(family) for family in trial.randomised} <= {visit.url for visit in visits}


# --- The API, crawled as a blinded assessor --------------------------------------------------------------
#
# Every GET operation of the schema, for every family of the trial (both sites), with each value of its query
# parameters that the schema enumerates (and every status and site), following every link an answer gives ("next"
# pages), in both languages, with carol's token holding every scope her roles allow.

API_MAX_CALLS = 1500


def api_key_of(user) -> str:
    from api.tests.helpers import key_for
    from api.tokens import scopes_for

    return key_for(user, *[scope for scope in scopes_for(user) if scope != "read"])


def _api_starts(schema: dict) -> list[str]:
    from reports.datasets import DATASET_TITLES

    starts = []
    study_ids = list(Family.objects.order_by("study_id").values_list("study_id", flat=True))
    for path, item in schema["paths"].items():
        operation = item.get("get")
        if operation is None:
            continue
        paths = [path]
        if "{study_id}" in path:
            paths = [path.replace("{study_id}", study_id) for study_id in study_ids]
        if "{key}" in path:
            paths = [one.replace("{key}", key) for one in paths for key in DATASET_TITLES]
        assert not any("{" in one for one in paths), f"the API crawl cannot fill {path}"
        for one in paths:
            starts.append(one)
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "query":
                    continue
                values = list(parameter.get("schema", {}).get("enum", []))
                if parameter["name"] == "status":
                    values += FamilyStatus.values
                if parameter["name"] == "site":
                    values += ["OEI", "LAR"]
                starts += [f"{one}?{urlencode({parameter['name']: value})}" for value in dict.fromkeys(values)]
    return starts


def _api_links(value) -> list[str]:
    """The API's own addresses in an answer (its "next" page, a Location)."""
    if isinstance(value, dict):
        return [link for item in value.values() for link in _api_links(item)]
    if isinstance(value, list):
        return [link for item in value for link in _api_links(item)]
    if isinstance(value, str) and "/api/v1/" in value:
        parts = urlsplit(value)
        if parts.netloc in ("", "testserver") and parts.path.startswith("/api/v1/"):
            return [parts.path + (f"?{parts.query}" if parts.query else "")]
    return []


def api_crawl(key: str, *, language: str) -> dict[str, Visit]:
    """Every GET of the API reachable from the schema's operations and the links of their answers."""
    from api.tests.helpers import Api

    api = Api(key, language=language)
    schema = json.loads(api.get(reverse("api:schema"), {"format": "json"}).content)
    queue = deque(_api_starts(schema))
    seen, visits = set(queue), {}
    while queue:
        url = queue.popleft()
        response = api.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        text = body.decode("utf-8-sig", errors="replace")
        visits[url] = Visit(url, response.status_code, text, language)
        assert len(visits) <= API_MAX_CALLS, f"the API crawl ran away at {url}"
        if "json" in response.get("Content-Type", ""):
            for link in _api_links(json.loads(text)):
                if link not in seen:
                    seen.add(link)
                    queue.append(link)
    return visits


def api_crawl_both_languages(user) -> list[Visit]:
    key = api_key_of(user)
    return [visit for language in LANGUAGES for visit in api_crawl(key, language=language).values()]


def api_family_url(family: Family) -> str:
    return reverse("api:family", kwargs={"study_id": family.study_id})


def iso_randomisation_times(body: str) -> list[str]:
    """The moments of the randomisations, as the API writes a date-time (the allocation's time, and the family's
    change to "randomised" in its history, which a "modified at" would give): to the microsecond, since in a test
    every family is registered within seconds of the randomisations, and a registration's time reveals nothing."""
    from rest_framework.fields import DateTimeField

    moments = list(Allocation.objects.values_list("randomised_at", flat=True))
    moments += list(Family.history.filter(status=FamilyStatus.RANDOMISED).values_list("history_date", flat=True))
    written = set()
    for moment in moments:
        written |= {
            DateTimeField().to_representation(moment),
            moment.isoformat(),
            timezone.localtime(moment).isoformat(),
        }
    return sorted(moment for moment in written if moment in body)


def api_arm_fields(body: str) -> list[str]:
    """Fields of a JSON answer that only an unblinded reader may get: an arm, an allocation, who randomised."""
    return sorted(set(re.findall(r'"(arm|allocation|randomisation_id|randomised_by|arm_guess)"\s*:\s*(?!null)', body)))


def test_the_api_shows_a_blinded_assessor_no_arm_in_any_answer_in_either_language(carol, trial):
    visits = api_crawl_both_languages(carol)

    leaks = [
        f"  {visit.language} {visit.url}: {found}"
        for visit in visits
        if (found := blinding_leaks(visit.body) + api_arm_fields(visit.body))
    ]
    assert not leaks, "carol, a blinded assessor, is given what reveals an arm through the API:\n" + "\n".join(leaks)
    timed = [
        f"  {visit.language} {visit.url}: {found}"
        for visit in visits
        if (visit.url.startswith(reverse("api:families")) and "/assessments/" not in visit.url)
        and (found := iso_randomisation_times(visit.body))
    ]
    assert not timed, "carol is given the time of day of a randomisation through the API:\n" + "\n".join(timed)

    answered = {(visit.language, visit.url): visit.status for visit in visits}
    for language in LANGUAGES:
        for family in trial.families:
            assert answered[(language, api_family_url(family))] == 200, f"carol reads {family.study_id} by the API"
        assert answered[(language, api_family_url(trial.other_site))] == 404, "carol reaches only her own site"
        assert answered[(language, reverse("api:families"))] == 200
    listed = " ".join(visit.body for visit in visits if visit.url.startswith(f"{reverse('api:families')}?status="))
    assert all(family.study_id in listed for family in trial.families), "the list's filters show her families"
    assert trial.other_site.study_id not in listed
    # Answers; refusals (she has no export scope); other sites' families (404) and the other site as a filter (400).
    expected = {200, 403, 404}
    unexpected = [
        (visit.url, visit.status, visit.body[:200])
        for visit in visits
        if visit.status not in expected and not (visit.status == 400 and "site=LAR" in visit.url)
    ]
    assert not unexpected, "carol is answered otherwise than expected"


def test_the_api_gives_a_researchers_crawl_the_arms_so_the_detector_works(alice, trial):
    visits = api_crawl_both_languages(alice)

    for language in LANGUAGES:
        answers = {visit.url: visit for visit in visits if visit.language == language}
        for family in trial.randomised:
            answer = answers.get(api_family_url(family))
            assert answer is not None and answer.status == 200, (family.study_id, language)
            assert arm_traces(answer.body), (family.study_id, language)
            assert trial.arms[family.study_id] in answer.body
            assert api_arm_fields(answer.body), "the allocation's fields"
        for family in trial.families:
            if family not in trial.randomised:
                assert not api_arm_fields(answers[api_family_url(family)].body), family.study_id
    assert leaks_in(visits), "the detector finds the arms in the researcher's answers"


def test_the_api_shows_an_assessor_unblinded_for_one_family_that_familys_arm_only(carol, paula, trial):
    unblinded = trial.plain[0]
    services.family_unblind(family=unblinded, user=carol, reason=CAROL_UNBLINDING_REASON, unblinded_by=paula)

    visits = api_crawl_both_languages(carol)

    for visit in [visit for visit in visits if visit.url == api_family_url(unblinded)]:
        assert visit.status == 200
        assert trial.arms[unblinded.study_id] in visit.body, visit.language
        assert work_traces(visit.body) == [], visit.language
    others = [visit for visit in visits if unblinded.study_id not in visit.url]
    # The list's answers name the unblinded family too (with its arm): only its own entry may show it.
    leaks = [
        f"  {visit.language} {visit.url}: {found}"
        for visit in others
        if (found := blinding_leaks(_without_family(visit.body, unblinded)))
    ]
    assert not leaks, "carol is given the arm of a family she was not unblinded for:\n" + "\n".join(leaks)


def _without_family(body: str, family: Family) -> str:
    """A JSON answer with the entries about `family` taken out (the family list's entry of the unblinded family)."""
    try:
        value = json.loads(body)
    except ValueError:
        return body

    def drop(item):
        if isinstance(item, dict):
            if item.get("study_id") == family.study_id:
                return None
            return {key: drop(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [inner for inner in (drop(one) for one in item) if inner is not None]
        return item

    return json.dumps(drop(value), ensure_ascii=False)
