"""Who may open which page: every URL of the project, as every role.

PAGES below is the access policy of the trial's pages, one row per URL name and one answer per role.
test_it_has_an_access_rule_for_every_url walks the URL resolver and fails for a URL the table does not
name, so a new view cannot ship without deciding who may open it. The admin's own URLs and Django's
set_language are checked by the tests at the end of this file.
"""

import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from api.models import ApiToken
from api.tokens import token_create
from families.models import Child, Consent, Family, FamilyIdentity, FamilyStatus, Parent, Screening, Withdrawal
from families.tests.factories import days_ago, family_in_state
from followups.models import Assessment, LostToFollowUp
from notifications.models import Message, MessageStatus, Preference
from notifications.tests.factories import send_message
from randomization import lists
from randomization import services as randomisation
from randomization.models import (
    Allocation,
    AllocationAnnotation,
    AllocationList,
    Arm,
    ListSegment,
    ListSuspension,
    Unblinding,
    Unsealing,
    Verification,
)
from randomization.tests.factories import ready_to_randomise
from randomization.tests.tampering import trigger_off
from trial.models import AuditEvent, Site, TrialSettings
from trial.roles import Role
from trial.tests.factories import UserFactory
from visits import services as visits_services
from visits.models import Assignment, Contact, ContactDay, InterventionPeriod, PartnerProfile, PartnerStatus
from visits.tests.factories import assigned_family, days_back, log_contact, partner, randomised_family

# Every role the policy speaks of, and the user (a fixture) who holds it. The family in each test is
# registered at Øvre Eiker (OEI), so "of site" means OEI and "of other site" means Larvik (LAR).
ROLES = {
    "researcher_of_site": "alice",
    "researcher_of_other_site": "bob",
    "assessor_of_site": "carol",
    "assessor_of_other_site": "lars",
    "family_partner": "frank",
    "principal_investigator": "paula",
    "data_manager": "dina",
    "administrator": "adam",
    "no_role": "nora",
    "anonymous": None,
}
LOGGED_IN = [role for role, user in ROLES.items() if user is not None]


@pytest.fixture
def lars(lar):
    """A blinded outcome assessor at Larvik."""
    return UserFactory(username="lars", roles=[Role.OUTCOME_ASSESSOR], sites=[lar])


@pytest.fixture
def nora(db):
    """A user whose account has no role in the trial yet."""
    return UserFactory(username="nora")


@dataclass(frozen=True)
class Expect:
    """What a role gets: a status, and for a redirect the URL name it leads to."""

    status: int
    to: str = ""
    with_next: bool = False  # a redirect to the login page that comes back here afterwards
    form_error: bool = False  # the form again, with an error, and nothing saved
    acted: bool = False  # the redirect after an allowed action: the trial's records changed (EFFECT)

    def __str__(self) -> str:
        return f"{self.status} → {self.to}" if self.to else str(self.status)


OK = Expect(200)
FORBIDDEN = Expect(403)
NOT_FOUND = Expect(404)
METHOD_NOT_ALLOWED = Expect(405)
TO_LOGIN = Expect(302, "login", with_next=True)
TO_FAMILY = Expect(302, "families:detail", acted=True)
TO_RECEIPT = Expect(302, "randomization:receipt", acted=True)  # the family's randomisation receipt
TO_LIST = Expect(302, "randomization:list", acted=True)
BACK_TO_LIST = Expect(302, "randomization:list")  # refused with a message on the list's page, nothing changed
TO_PARTNER_HOME = Expect(302, "visits:partner_home", acted=True)
TO_WORK = Expect(302, "visits:family", acted=True)  # the family's Family Partner work page
TO_CASELOAD = Expect(302, "visits:caseload", acted=True)
TO_SEND_LOG = Expect(302, "notifications:log", acted=True)
TO_INBOX = Expect(302, "notifications:inbox")
FORM_ERROR = Expect(200, form_error=True)


def redirect_to(url_name: str) -> Expect:
    return Expect(302, url_name)


def rule(*, others: Expect, anonymous: Expect = TO_LOGIN, **by_role: Expect) -> dict[str, Expect]:
    """An answer for every role: `others` for each logged-in role not named."""
    unknown = set(by_role) - set(LOGGED_IN)
    assert not unknown, f"unknown roles {unknown}"
    return {role: by_role.get(role, others) for role in LOGGED_IN} | {"anonymous": anonymous}


@dataclass(frozen=True)
class Page:
    get: dict[str, Expect]
    # The state of the OEI family a family page is opened for: a state of families.tests.factories, or
    # "randomised", "intervention" (randomised to it, waiting for a Family Partner) or "assigned" (frank's).
    family_state: str | None = None
    post: dict[str, Expect] = field(default_factory=dict)
    # OEI's allocation list before the request: None (no list), "sealed", "unseal_requested" (asked for by
    # the data manager), "unsealed", "suspended" (stopped by a failed verification) or "suspension_reviewed"
    # (what was found written by the data manager). A page with a list state is opened for OEI's list.
    list_state: str | None = None
    # For a URL that takes a record's key: "contact" (the contact frank logged with the family),
    # "partner" (frank's Family Partner profile), or a message to frank about an OEI family: "message" (pending,
    # unread), "read_message" (sent and read) or "failed_message" (its sending failed).
    pk_of: str = ""
    # For a URL that takes a time point (follow-ups): its months.
    months: int | None = None


# Roles that see families (of their own sites; the PI all): the family list is their landing page.
FAMILY_VIEWERS = {
    "researcher_of_site": OK,
    "researcher_of_other_site": OK,
    "assessor_of_site": OK,
    "assessor_of_other_site": OK,
    "principal_investigator": OK,
}
# A family page of an OEI family: seen by OEI's researchers and assessors and the PI, acted on only by
# OEI's researchers; to everyone else the family does not exist.
FAMILY_ACTION = rule(
    others=NOT_FOUND, researcher_of_site=OK, assessor_of_site=FORBIDDEN, principal_investigator=FORBIDDEN
)
FAMILY_ACTION_POST = rule(
    others=NOT_FOUND, researcher_of_site=TO_FAMILY, assessor_of_site=FORBIDDEN, principal_investigator=FORBIDDEN
)

# The allocation lists' pages: the data manager and the PI see a list's metadata; only the data manager
# changes a list; to everyone else the pages are forbidden.
LIST_VIEWERS = rule(others=FORBIDDEN, data_manager=OK, principal_investigator=OK)
LIST_ACTION = rule(others=FORBIDDEN, data_manager=OK)
LIST_ACTION_POST = rule(others=FORBIDDEN, data_manager=TO_LIST)
POST_ONLY = rule(others=METHOD_NOT_ALLOWED, anonymous=METHOD_NOT_ALLOWED)

# The Family Partner's work with an OEI intervention family assigned to frank: its page is seen by frank (its
# Family Partner now), OEI's researchers and the PI; its contacts are logged and corrected by frank only.
# The work reveals the arm, so a blinded assessor, like everyone else, finds no such page.
PARTNER_WORK = rule(others=NOT_FOUND, family_partner=OK, researcher_of_site=OK, principal_investigator=OK)
PARTNER_ACTION = rule(
    others=NOT_FOUND, family_partner=OK, researcher_of_site=FORBIDDEN, principal_investigator=FORBIDDEN
)
# Caseloads and weekly hours: researchers (of their own sites) and the PI (all sites, read-only).
CASELOAD_VIEWERS = rule(others=FORBIDDEN, researcher_of_site=OK, researcher_of_other_site=OK, principal_investigator=OK)
# A message to frank about an OEI family, in the send log: data managers and OEI's researchers cancel it or send it
# again; the PI and frank see it in their log but act on nothing; to everyone else it does not exist.
MESSAGE_ACTION = rule(
    others=NOT_FOUND, data_manager=OK, researcher_of_site=OK, principal_investigator=FORBIDDEN, family_partner=FORBIDDEN
)
MESSAGE_ACTION_POST = rule(
    others=NOT_FOUND,
    data_manager=TO_SEND_LOG,
    researcher_of_site=TO_SEND_LOG,
    principal_investigator=FORBIDDEN,
    family_partner=FORBIDDEN,
)

# The feasibility report and its downloads (reports/report_pages.py).
REPORT_READERS = rule(
    others=FORBIDDEN,
    principal_investigator=OK,
    data_manager=OK,
    researcher_of_site=OK,
    researcher_of_other_site=OK,
)
# The audit log (reports/audit_pages.py).
AUDIT_READERS = rule(others=FORBIDDEN, principal_investigator=OK, data_manager=OK, administrator=OK)
# The sites' recruitment state: back to the list of sites after a change.
TO_RECRUITMENT_STATES = Expect(302, "recruitment_states", acted=True)

PAGES: dict[str, Page] = {
    "home": Page(
        get=rule(
            others=OK,
            data_manager=redirect_to("randomization:lists"),
            family_partner=redirect_to("visits:partner_home"),
            **{role: redirect_to("families:list") for role in ("researcher_of_site", "researcher_of_other_site")},
            # The PI's home page is recruitment against the target, by site.
            principal_investigator=redirect_to("randomization:recruitment"),
            # An assessor's home page is their worklist (followups registers it).
            assessor_of_site=redirect_to("followups:worklist"),
            assessor_of_other_site=redirect_to("followups:worklist"),
        )
    ),
    "healthz": Page(get=rule(others=OK, anonymous=OK)),
    # Prometheus' scrape: only with METRICS_TOKEN set, and then only for that bearer token, never for a session
    # (monitoring/tests/test_metrics.py); here no token is set, so it does not exist for anyone.
    "metrics": Page(get=rule(others=NOT_FOUND, anonymous=NOT_FOUND)),
    # Signing in: a wrong password gets the form back; the signed-in are sent home, whatever they post.
    "login": Page(
        get=rule(others=redirect_to("home"), anonymous=OK),
        post=rule(others=redirect_to("home"), anonymous=FORM_ERROR),
    ),
    "logout": Page(
        get=rule(others=METHOD_NOT_ALLOWED, anonymous=METHOD_NOT_ALLOWED),
        post=rule(others=redirect_to("login"), anonymous=redirect_to("login")),
    ),
    "password_change": Page(get=rule(others=OK)),
    "password_change_done": Page(get=rule(others=OK)),
    # The trial settings: the data manager changes them (with a reason), the PI reads them.
    "trial_settings": Page(
        get=rule(others=FORBIDDEN, data_manager=OK, principal_investigator=OK),
        post=rule(others=FORBIDDEN, data_manager=Expect(302, "trial_settings", acted=True)),
    ),
    "families:list": Page(get=rule(others=FORBIDDEN, **FAMILY_VIEWERS)),
    "families:register": Page(
        # A researcher registers at their own sites: bob gets the form, but not for OEI.
        get=rule(others=FORBIDDEN, researcher_of_site=OK, researcher_of_other_site=OK),
        post=rule(others=FORBIDDEN, researcher_of_site=TO_FAMILY, researcher_of_other_site=FORM_ERROR),
    ),
    "families:detail": Page(
        family_state="consented",
        get=rule(others=NOT_FOUND, researcher_of_site=OK, assessor_of_site=OK, principal_investigator=OK),
    ),
    "families:identifiers": Page(family_state="referred", get=FAMILY_ACTION, post=FAMILY_ACTION_POST),
    "families:household": Page(family_state="eligible", get=FAMILY_ACTION, post=FAMILY_ACTION_POST),
    "families:screen": Page(family_state="referred", get=FAMILY_ACTION, post=FAMILY_ACTION_POST),
    "families:consent": Page(family_state="eligible", get=FAMILY_ACTION, post=FAMILY_ACTION_POST),
    "families:withdraw": Page(family_state="consented", get=FAMILY_ACTION, post=FAMILY_ACTION_POST),
    "randomization:lists": Page(get=LIST_VIEWERS),
    # Recruitment against the targets (counts, no arm): researchers for their sites, the PI and data managers.
    "randomization:recruitment": Page(
        get=rule(
            others=FORBIDDEN,
            researcher_of_site=OK,
            researcher_of_other_site=OK,
            principal_investigator=OK,
            data_manager=OK,
        )
    ),
    "randomization:generate": Page(get=LIST_ACTION, post=rule(others=FORBIDDEN, data_manager=TO_LIST)),
    "randomization:list": Page(list_state="sealed", get=LIST_VIEWERS),
    "randomization:commitment": Page(list_state="sealed", get=LIST_VIEWERS),
    "randomization:canonical_text": Page(list_state="unsealed", get=LIST_VIEWERS),
    "randomization:extend": Page(list_state="sealed", get=LIST_ACTION, post=LIST_ACTION_POST),
    "randomization:verify": Page(list_state="sealed", get=POST_ONLY, post=LIST_ACTION_POST),
    "randomization:unseal": Page(
        # Either role may ask; the other one must agree.
        list_state="sealed",
        get=LIST_VIEWERS,
        post=rule(others=FORBIDDEN, data_manager=TO_LIST, principal_investigator=TO_LIST),
    ),
    "randomization:unseal_approve": Page(
        # The data manager asked; only the PI (the other role, another person) can agree. The data manager is
        # told on the list's page that another person must agree.
        list_state="unseal_requested",
        get=POST_ONLY,
        post=rule(others=FORBIDDEN, principal_investigator=TO_LIST, data_manager=BACK_TO_LIST),
    ),
    "randomization:review": Page(
        # Either role writes what was found behind a failed verification; the other one must agree.
        list_state="suspended",
        get=LIST_VIEWERS,
        post=rule(others=FORBIDDEN, data_manager=TO_LIST, principal_investigator=TO_LIST),
    ),
    "randomization:review_approve": Page(
        # The data manager wrote it; only the PI can agree (the data manager is told so on the list's page).
        list_state="suspension_reviewed",
        get=POST_ONLY,
        post=rule(others=FORBIDDEN, principal_investigator=TO_LIST, data_manager=BACK_TO_LIST),
    ),
    "randomization:randomise": Page(
        family_state="consented",
        list_state="sealed",
        get=FAMILY_ACTION,
        post=rule(
            others=NOT_FOUND,
            researcher_of_site=TO_RECEIPT,
            assessor_of_site=FORBIDDEN,
            principal_investigator=FORBIDDEN,
        ),
    ),
    # The receipt shows the arm: the site's researchers and the PI; to every other role, blinded assessors
    # included, it does not exist.
    "randomization:receipt": Page(
        family_state="randomised", get=rule(others=NOT_FOUND, researcher_of_site=OK, principal_investigator=OK)
    ),
    "randomization:annotate": Page(family_state="randomised", get=FAMILY_ACTION, post=FAMILY_ACTION_POST),
    "randomization:unblind": Page(
        family_state="randomised",
        get=rule(others=NOT_FOUND, researcher_of_site=FORBIDDEN, assessor_of_site=FORBIDDEN, principal_investigator=OK),
        post=rule(
            others=NOT_FOUND,
            researcher_of_site=FORBIDDEN,
            assessor_of_site=FORBIDDEN,
            principal_investigator=TO_FAMILY,
        ),
    ),
    # frank's own page: his families now (here one, assigned to him).
    "visits:partner_home": Page(family_state="assigned", get=rule(others=FORBIDDEN, family_partner=OK)),
    "visits:family": Page(family_state="assigned", get=PARTNER_WORK),
    "visits:contact_new": Page(
        family_state="assigned",
        get=PARTNER_ACTION,
        post=rule(
            others=NOT_FOUND,
            family_partner=TO_PARTNER_HOME,
            researcher_of_site=FORBIDDEN,
            principal_investigator=FORBIDDEN,
        ),
    ),
    "visits:contact_edit": Page(
        family_state="assigned",
        pk_of="contact",
        get=PARTNER_ACTION,
        post=rule(
            others=NOT_FOUND, family_partner=TO_WORK, researcher_of_site=FORBIDDEN, principal_investigator=FORBIDDEN
        ),
    ),
    # frank's contact: voided by its author (frank, the family's partner) or OEI's researchers; the PI sees the
    # family's work but voids nothing; to everyone else no such contact exists.
    "visits:contact_void": Page(
        family_state="assigned",
        pk_of="contact",
        get=rule(others=NOT_FOUND, family_partner=OK, researcher_of_site=OK, principal_investigator=FORBIDDEN),
        post=rule(
            others=NOT_FOUND, family_partner=TO_WORK, researcher_of_site=TO_WORK, principal_investigator=FORBIDDEN
        ),
    ),
    "visits:caseload": Page(family_state="assigned", get=CASELOAD_VIEWERS),
    "visits:dose": Page(family_state="assigned", get=CASELOAD_VIEWERS),
    # frank's profile (at OEI): only OEI's researchers send him on leave or back. A profile is no family:
    # the others are refused, not told that it does not exist.
    "visits:partner_status": Page(
        pk_of="partner", get=POST_ONLY, post=rule(others=FORBIDDEN, researcher_of_site=TO_CASELOAD)
    ),
    # An intervention family waiting for its first Family Partner (frank has free slots).
    "visits:assign": Page(family_state="intervention", get=FAMILY_ACTION, post=FAMILY_ACTION_POST),
    "visits:end": Page(family_state="assigned", get=FAMILY_ACTION, post=FAMILY_ACTION_POST),
    # Everyone signed in has an inbox and a profile of their own, and a send log (their own messages, or more).
    "notifications:inbox": Page(pk_of="message", get=rule(others=OK)),
    "notifications:log": Page(pk_of="failed_message", get=rule(others=OK)),
    "notifications:profile": Page(
        get=rule(others=OK), post=rule(others=Expect(302, "notifications:profile", acted=True))
    ),
    # frank's message: only he opens it or marks it unread; marking all read touches one's own messages only.
    "notifications:message": Page(pk_of="message", get=rule(others=NOT_FOUND, family_partner=OK)),
    "notifications:unread": Page(
        pk_of="read_message",
        get=POST_ONLY,
        post=rule(others=NOT_FOUND, family_partner=Expect(302, "notifications:inbox", acted=True)),
    ),
    "notifications:mark_all_read": Page(
        pk_of="message",
        get=POST_ONLY,
        post=rule(others=TO_INBOX, family_partner=Expect(302, "notifications:inbox", acted=True)),
    ),
    "notifications:cancel": Page(pk_of="message", get=MESSAGE_ACTION, post=MESSAGE_ACTION_POST),
    "notifications:retry": Page(pk_of="failed_message", get=POST_ONLY, post=MESSAGE_ACTION_POST),
    # Follow-up: the grid for the assessors and researchers of their sites and the PI (no data manager: no family
    # data); the worklist is an assessor's; recording, booking and losing a family are for the assessors of the
    # family's site; its researchers and the PI read.
    "followups:grid": Page(
        family_state="randomised",
        get=rule(
            others=FORBIDDEN,
            researcher_of_site=OK,
            researcher_of_other_site=OK,
            assessor_of_site=OK,
            assessor_of_other_site=OK,
            principal_investigator=OK,
        ),
    ),
    "followups:worklist": Page(
        family_state="randomised", get=rule(others=FORBIDDEN, assessor_of_site=OK, assessor_of_other_site=OK)
    ),
    "followups:assessment": Page(
        family_state="randomised",
        months=3,
        get=rule(others=NOT_FOUND, researcher_of_site=OK, assessor_of_site=OK, principal_investigator=OK),
        post=rule(
            others=NOT_FOUND,
            assessor_of_site=Expect(302, "followups:grid", acted=True),
            researcher_of_site=FORBIDDEN,
            principal_investigator=FORBIDDEN,
        ),
    ),
    "followups:book": Page(
        family_state="randomised",
        months=3,
        get=POST_ONLY,
        post=rule(
            others=NOT_FOUND,
            assessor_of_site=Expect(302, "followups:assessment", acted=True),
            researcher_of_site=FORBIDDEN,
            principal_investigator=FORBIDDEN,
        ),
    ),
    # The parent's name and phone, while an assessment is open or upcoming (here the baseline, not yet recorded).
    "followups:contact": Page(
        family_state="baseline_due",
        get=rule(others=NOT_FOUND, assessor_of_site=OK, researcher_of_site=FORBIDDEN, principal_investigator=FORBIDDEN),
    ),
    "followups:lost": Page(
        family_state="randomised",
        get=rule(others=NOT_FOUND, assessor_of_site=OK, researcher_of_site=FORBIDDEN, principal_investigator=FORBIDDEN),
        post=rule(
            others=NOT_FOUND, assessor_of_site=TO_FAMILY, researcher_of_site=FORBIDDEN, principal_investigator=FORBIDDEN
        ),
    ),
    # ---- reports: the feasibility report (reports/report_pages.py) ----
    # The report is by arm: the PI and data managers (every site) and researchers (their own sites) read it and
    # download it; anyone holding the assessor role is blinded and refused, like partners and administrators.
    "reports:report": Page(get=REPORT_READERS),
    "reports:report_pdf": Page(get=REPORT_READERS),
    "reports:report_xlsx": Page(get=REPORT_READERS),
    "reports:report_csv": Page(get=REPORT_READERS),
    # ---- reports: the analysis datasets (reports/dataset_pages.py) ----
    # Data managers and the PI (every site); a download is the same URL with the form's choices.
    "reports:datasets": Page(get=rule(others=FORBIDDEN, data_manager=OK, principal_investigator=OK)),
    # ---- reports: the audit log (reports/audit_pages.py) ----
    # Every change and export: the PI, data managers and administrators; nobody else, blinded or not.
    "reports:audit": Page(get=AUDIT_READERS),
    "reports:audit_csv": Page(get=AUDIT_READERS),
    # ---- trial: sites' recruitment state ----
    # Data managers and the PI open, pause and close recruitment at a site, with a reason.
    "recruitment_states": Page(get=rule(others=FORBIDDEN, data_manager=OK, principal_investigator=OK)),
    "site_recruitment_state": Page(
        get=rule(others=FORBIDDEN, data_manager=OK, principal_investigator=OK),
        post=rule(others=FORBIDDEN, data_manager=TO_RECRUITMENT_STATES, principal_investigator=TO_RECRUITMENT_STATES),
    ),
    # ---- api: personal API tokens (api/token_pages.py) ----
    # Everyone signed in sees their own tokens; whoever holds a role makes one (its key in the POST's own page, not a
    # redirect); a user without a role is told so, and refused a new token. A token is revoked by its owner only
    # (alice's here; the administrators revoke anyone's in the admin): anyone else's does not exist on the page.
    "tokens:list": Page(get=rule(others=OK), post=rule(others=Expect(200, acted=True), no_role=FORBIDDEN)),
    "tokens:revoke": Page(
        pk_of="token",
        get=rule(others=NOT_FOUND, researcher_of_site=OK),
        post=rule(others=NOT_FOUND, researcher_of_site=Expect(302, "tokens:list", acted=True)),
    ),
}

# Checked by their own tests below: the admin guards itself (staff status and model permissions),
# and set_language is a POST that anyone may send. The API (`api:`) has its own matrix of every operation, role
# and kind of token: api/tests/test_api_matrix.py.
EXCLUDED_NAMESPACES = {"admin", "api"}
EXCLUDED_NAMES = {"set_language"}


def _walk(patterns, namespace: str = "", prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from _walk(pattern.url_patterns, inner, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield namespace, pattern.name, prefix + str(pattern.pattern)


def project_urls() -> dict[str, str]:
    """Every URL pattern of the project outside the admin: {"namespace:name": route}."""
    urls = {}
    for namespace, name, route in _walk(get_resolver().url_patterns):
        if namespace.split(":")[0] in EXCLUDED_NAMESPACES:
            continue
        assert name, f"the URL {route!r} has no name, so no access rule can be given for it"
        full_name = f"{namespace}:{name}" if namespace else name
        if full_name not in EXCLUDED_NAMES:
            urls[full_name] = route
    return urls


def test_it_has_an_access_rule_for_every_url():
    urls = project_urls()
    missing = sorted(set(urls) - set(PAGES))
    assert not missing, (
        f"These URLs have no access rule in tests/test_access_matrix.py PAGES: "
        f"{', '.join(f'{name} ({urls[name]})' for name in missing)}. Add a row saying what every role gets."
    )
    stale = sorted(set(PAGES) - set(urls))
    assert not stale, f"PAGES names URLs that no longer exist: {stale}"


def test_it_gives_every_rule_an_answer_for_every_role():
    for name, page in PAGES.items():
        assert set(page.get) == set(ROLES), name
        assert not page.post or set(page.post) == set(ROLES), name


# ---------------------------------------------------------------------------------------------------------
# The table, as every role


@pytest.fixture
def as_role(request, client, db):
    """as_role("assessor_of_site") -> a client logged in as the user who holds that role."""

    def log_in(role: str):
        if ROLES[role] is not None:
            client.force_login(request.getfixturevalue(ROLES[role]))
        return client

    return log_in


def frank_as_partner(request) -> PartnerProfile:
    """frank's Family Partner profile at OEI (the fixture is a user with the role only), five free slots."""
    frank, oei = request.getfixturevalue("frank"), request.getfixturevalue("oei")
    return PartnerProfile.objects.get_or_create(user=frank, defaults={"site": oei, "capacity": 5})[0]


def family_for(page: Page, request) -> Family | None:
    oei, alice = request.getfixturevalue("oei"), request.getfixturevalue("alice")
    if page.list_state is not None or page.family_state == "randomised":
        dina = request.getfixturevalue("dina")
        allocation_list = lists.allocation_list_generate(site=oei, generated_by=dina)
        if page.list_state in ("unseal_requested", "unsealed"):
            lists.allocation_list_request_unsealing(
                allocation_list=allocation_list, reason="Recruitment has closed", requested_by=dina
            )
        if page.list_state == "unsealed":
            lists.allocation_list_approve_unsealing(
                allocation_list=allocation_list, approved_by=request.getfixturevalue("paula")
            )
        if page.list_state in ("suspended", "suspension_reviewed"):
            entry = allocation_list.entries.get(position=3)
            with trigger_off("randomization_allocationentry"):
                allocation_list.entries.filter(pk=entry.pk).update(
                    sealed_arm=Arm.CONTROL if entry.sealed_arm == Arm.INTERVENTION else Arm.INTERVENTION
                )
            lists.allocation_list_verify(allocation_list=allocation_list, verified_by=dina)
        if page.list_state == "suspension_reviewed":
            lists.allocation_list_review_suspension(
                allocation_list=allocation_list, finding="Entry 3 changed", decision="Resume", reviewed_by=dina
            )
    if page.family_state in ("intervention", "assigned") or page.pk_of == "partner":
        frank_as_partner(request)
    if page.pk_of == "token":
        token_create(user=alice, name="alice's script", scopes=["read"])
    if page.pk_of in MESSAGE_STATES:
        send_message(request.getfixturevalue("frank"), site=oei, **MESSAGE_STATES[page.pk_of])
    if page.family_state is None:
        return None
    if page.family_state == "baseline_due":  # consented, its baseline not recorded yet
        return family_in_state("consented", site=oei, by=alice)
    if page.family_state == "randomised":
        family = ready_to_randomise(oei, by=alice)
        randomisation.family_randomise(family=family, confirmed_site=oei, randomised_by=alice)
        return Family.objects.get(pk=family.pk)
    if page.family_state == "intervention":  # randomised to the intervention, waiting for a Family Partner
        return randomised_family(oei, researcher=alice)
    if page.family_state == "assigned":  # frank's family now, its intervention running, one contact logged
        family = assigned_family(oei, researcher=alice, to=frank_as_partner(request))
        log_contact(family, by=request.getfixturevalue("frank"), notes="Talked about the morning routine")
        return family
    if page.family_state == "consented":  # with its baseline recorded: ready to randomise
        return ready_to_randomise(oei, by=alice)
    return family_in_state(page.family_state, site=oei, by=alice)


MESSAGE_STATES = {
    "message": {},
    "read_message": {"status": MessageStatus.SENT, "read_at": "2026-01-05T08:00Z"},
    "failed_message": {"status": MessageStatus.FAILED},
}


def url_of(name: str, family: Family | None, page: Page) -> str:
    """The page's address: for its family, OEI's list, frank's contact with the family or frank's profile."""
    route = project_urls()[name]
    if "<str:study_id>" in route:
        assert family is not None, f"{name} needs a family_state"
        if page.months is not None:
            return reverse(name, kwargs={"study_id": family.study_id, "months": page.months})
        return reverse(name, kwargs={"study_id": family.study_id})
    if "<str:site_code>" in route:
        return reverse(name, kwargs={"site_code": "OEI"})
    if page.pk_of in MESSAGE_STATES and "<int:pk>" in route:
        return reverse(name, kwargs={"pk": Message.objects.get(recipient__username="frank").pk})
    if page.pk_of == "contact":
        return reverse(name, kwargs={"pk": Contact.objects.get(family=family, author__username="frank").pk})
    if page.pk_of == "partner":
        return reverse(name, kwargs={"pk": PartnerProfile.objects.get(user__username="frank").pk})
    if page.pk_of == "token":
        return reverse(name, kwargs={"pk": ApiToken.objects.get(user__username="alice").pk})
    return reverse(name)


def assert_answer(response, expected: Expect, *, url: str, family: Family | None = None) -> None:
    assert response.status_code == expected.status, f"expected {expected}, got {response.status_code}"
    if expected.status != 302:
        return
    if expected.with_next:
        target = f"{reverse(expected.to)}?{urlencode({'next': url}, safe='/')}"
    elif expected == TO_FAMILY:
        target = reverse("families:detail", kwargs={"study_id": (family or Family.objects.latest("pk")).study_id})
    elif expected == TO_RECEIPT:
        assert family is not None
        target = reverse("randomization:receipt", kwargs={"study_id": family.study_id})
    elif expected.to == "randomization:list":
        target = reverse("randomization:list", kwargs={"site_code": "OEI"})
    elif expected == TO_WORK:
        assert family is not None
        target = reverse("visits:family", kwargs={"study_id": family.study_id})
    elif expected.to == "followups:assessment":
        assert family is not None
        target = reverse("followups:assessment", kwargs={"study_id": family.study_id, "months": 3})
    else:
        target = reverse(expected.to)
    assert response.url == target


def _cases(method: str):
    for name, page in PAGES.items():
        rules = page.get if method == "get" else page.post
        for role, expected in rules.items():
            yield pytest.param(name, role, expected, id=f"{name}-as-{role}")


@pytest.mark.parametrize(("url_name", "role", "expected"), list(_cases("get")))
def test_it_answers_a_page_as_the_access_table_says(request, as_role, url_name, role, expected):
    page = PAGES[url_name]
    family = family_for(page, request)
    url = url_of(url_name, family, page)
    client = as_role(role)

    response = client.get(url)

    assert_answer(response, expected, url=url, family=family)


def research_records() -> dict:
    """Everything a POST could change about the trial's families, to compare before and after."""
    counts = {}
    for model in (Family, Parent, Child, FamilyIdentity, Screening, Consent, Withdrawal):
        counts[model.__name__] = model.objects.count()
        counts[f"history of {model.__name__}"] = model.history.count()
    counts["statuses"] = dict(Family.objects.values_list("study_id", "status"))
    counts["last numbers"] = dict(Site.objects.values_list("code", "last_family_number"))
    counts["recruitment states"] = dict(Site.objects.values_list("code", "recruitment_state"))
    counts["trial settings"] = TrialSettings.history.count()
    for model in (Allocation, AllocationAnnotation, AllocationList, ListSegment, Unblinding, Unsealing, Verification):
        counts[model.__name__] = model.objects.count()
    counts["lists"] = list(AllocationList.objects.values_list("site__code", "length", "used", "unsealed_at"))
    counts["unsealings agreed"] = Unsealing.objects.filter(approved_at__isnull=False).count()
    counts["stops"] = list(ListSuspension.objects.order_by("pk").values_list("reviewed_at", "approved_at"))
    counts["lists stopped"] = list(AllocationList.objects.values_list("site__code", "suspended_at"))
    for model in (PartnerProfile, Assignment, InterventionPeriod, Contact):
        counts[model.__name__] = model.objects.count()
        counts[f"history of {model.__name__}"] = model.history.count()
    counts["active families"] = dict(PartnerProfile.objects.values_list("user__username", "active_families"))
    counts["partner statuses"] = dict(PartnerProfile.objects.values_list("user__username", "status"))
    counts["assignments"] = list(
        Assignment.objects.order_by("pk").values_list("family__study_id", "partner__user__username", "ended_on")
    )
    counts["interventions"] = list(
        InterventionPeriod.objects.order_by("pk").values_list("family__study_id", "ended_on", "end_reason")
    )
    counts["contacts"] = list(
        Contact.objects.order_by("pk").values_list(
            "pk", "contact_date", "duration_quarters", "kind", "elements", "voided_at"
        )
    )
    counts["contact days"] = list(ContactDay.objects.order_by("pk").values_list("family_id", "day", "quarters"))
    counts["messages"] = list(
        Message.objects.order_by("pk").values_list("pk", "status", "attempts", "read_at", "cancel_reason")
    )
    counts["preferences"] = dict(Preference.objects.values_list("user__username", "language"))
    # Only addresses that are set: a fixture may make a user (without one) while the form is being filled in.
    counts["e-mail addresses"] = dict(User.objects.exclude(email="").values_list("username", "email"))

    counts["history of Assessment"] = Assessment.history.count()
    counts["assessments"] = list(
        Assessment.objects.order_by("pk").values_list("family_id", "months", "status", "booked_on", "done_on")
    )
    counts["lost to follow-up"] = LostToFollowUp.objects.count()
    counts["audit events"] = AuditEvent.objects.count()
    counts["API tokens"] = list(ApiToken.objects.order_by("pk").values_list("user__username", "name", "revoked_at"))
    return counts


def form_data(url_name: str, *, site: Site, researcher, request) -> dict:
    """A valid submission of each action's form (for `oei` and a family registered there)."""
    token = str(uuid.uuid4())
    if url_name == "login":
        return {"username": "alice", "password": "wrong-password"}
    if url_name == "trial_settings":
        from trial.forms import TrialSettingsForm

        form = TrialSettingsForm(instance=TrialSettings.current())
        data = {name: form[name].field.prepare_value(form[name].value()) for name in form.fields}
        return data | {"partner_capacity": 4, "reason": "Fewer hours per partner"}
    if url_name == "families:register":
        return {
            "token": token,
            "site": site.pk,
            "referral_date": days_ago(3).isoformat(),
            "referral_source": "child_welfare_caseworker",
            "contact_name": "Ola Nordmann",
            "national_id_number": "",
            "phone": "",
            "address": "",
            "other_members": "",
            "parents-TOTAL_FORMS": 1,
            "parents-INITIAL_FORMS": 0,
            "parents-0-birth_year": 1988,
            "children-TOTAL_FORMS": 1,
            "children-INITIAL_FORMS": 0,
            "children-0-birth_date": "2019-03-01",
        }
    if url_name == "families:identifiers":
        return {
            "contact_name": "Kari Nordmann-Berg",
            "national_id_number": "",
            "phone": "91234567",
            "address": "",
            "other_members": "",
        }
    if url_name == "families:household":
        return {
            "reason": "Birth year mistyped",
            "parents-TOTAL_FORMS": 1,
            "parents-INITIAL_FORMS": 0,
            "parents-0-birth_year": 1985,
            "children-TOTAL_FORMS": 1,
            "children-INITIAL_FORMS": 0,
            "children-0-birth_date": "2019-03-01",
        }
    if url_name == "families:screen":
        return {
            "token": token,
            "screened_on": days_ago(1).isoformat(),
            "involved_with_child_welfare": "yes",
            "harmful_circumstances": "yes",
            "struggle_areas": ["finances", "housing"],
        }
    if url_name == "families:consent":
        return {
            "token": token,
            "decision": "consented",
            "decided_on": days_ago(1).isoformat(),
            "form_version": "v2",
            "obtained_by": researcher.pk,
        }
    if url_name == "randomization:generate":
        return {
            "site": site.pk,
            "block_sizes": "2, 4, 6",
            "ratio_intervention": 1,
            "ratio_control": 1,
            "length": "",
            "confirmed": "yes",
        }
    if url_name == "randomization:extend":
        return {"additional": 6, "block_sizes": "2, 4", "reason": "More families than expected", "confirmed": "yes"}
    if url_name == "randomization:unseal":
        return {"reason": "Recruitment has closed", "confirm": "on"}
    if url_name == "randomization:review":
        return {"finding": "Entry 3 was changed by a restore script", "decision": "Resume: the entry is unused"}
    if url_name == "randomization:randomise":
        return {"site": site.code, "confirm": "on"}
    # The forms with a confirmation page, sent from it (its Confirm button).
    if url_name == "randomization:annotate":
        return {"reason": "Consent had been withdrawn by phone the day before", "confirmed": "yes"}
    if url_name == "randomization:unblind":
        return {"user": request.getfixturevalue("carol").pk, "reason": "Serious adverse event", "confirmed": "yes"}
    if url_name == "families:withdraw":
        return {
            "token": token,
            "withdrawn_on": days_ago(1).isoformat(),
            "reason": "moved_away",
            "details": "",
            "data_may_be_kept": "yes",
        }
    if url_name == "visits:contact_new":
        return contact_data()
    if url_name == "visits:contact_edit":
        return correction_data()
    if url_name == "visits:contact_void":
        return {"reason": "Logged with the wrong family"}
    if url_name == "visits:partner_status":
        return {"status": PartnerStatus.ON_LEAVE}
    if url_name == "visits:assign":
        return {"partner": PartnerProfile.objects.get(user__username="frank").pk, "started_on": days_ago(0).isoformat()}
    if url_name == "visits:end":
        return {"ended_on": days_ago(0).isoformat(), "reason": "family_ended", "details": ""}
    if url_name == "notifications:profile":
        return {"email": "new.address@example.no", "language": "en"}
    if url_name == "notifications:cancel":
        return {"reason": "Booked by phone already"}
    if url_name == "site_recruitment_state":
        return {"OEI-state": "paused", "OEI-reason": "Staff on leave"}
    if url_name == "tokens:list":
        return {"name": "matrix script", "days": 30}

    if url_name == "followups:assessment":
        # Today is before the 3-month window: confirmed as outside it.
        return {
            "token": token,
            "status": "completed",
            "done_on": days_ago(0).isoformat(),
            "mode": "phone",
            "questionnaires": ["SDQ"],
            "arm_guess": "unsure",
            "confirm_outside_window": "on",
        }
    if url_name == "followups:book":
        return {"booked_on": days_ago(-3).isoformat()}
    if url_name == "followups:lost":
        return {"token": token, "lost_on": days_ago(0).isoformat(), "reason": "moved", "details": ""}
    return {}


def contact_data() -> dict:
    """A contact logged today (a new submission token each time)."""
    return {
        "token": str(uuid.uuid4()),
        "contact_date": days_ago(0).isoformat(),
        "duration_quarters": 4,
        "kind": "phone_video",
        "elements": ["coordination"],
        "notes": "Planned the meeting with the school",
    }


def correction_data() -> dict:
    """A correction of the contact `family_for` logs: 2 h to 1.5 h, new notes."""
    return {
        "contact_date": days_ago(0).isoformat(),
        "duration_quarters": 6,
        "kind": "home_visit",
        "elements": ["home_visitation", "therapeutic_relationship"],
        "notes": "Talked about the morning routine and the school",
        "reason": "",
    }


# What an allowed POST does to the family (or the trial's list of families).
EFFECT = {
    "trial_settings": lambda before, after, family: (
        after["trial settings"] == before["trial settings"] + 1 and TrialSettings.current().partner_capacity == 4
    ),
    "families:register": lambda before, after, family: after["Family"] == before["Family"] + 1,
    "site_recruitment_state": lambda before, after, family: after["recruitment states"]["OEI"] == "paused",
    "families:identifiers": lambda before, after, family: (
        after["history of FamilyIdentity"] == before["history of FamilyIdentity"] + 1
        and FamilyIdentity.objects.get(family=family).contact_name == "Kari Nordmann-Berg"
    ),
    "families:household": lambda before, after, family: (
        list(family.parents.values_list("birth_year", flat=True)) == [1985]
        and after["statuses"][family.study_id] == FamilyStatus.REFERRED
    ),
    "families:screen": lambda before, after, family: after["statuses"][family.study_id] == FamilyStatus.ELIGIBLE,
    "families:consent": lambda before, after, family: after["statuses"][family.study_id] == FamilyStatus.CONSENTED,
    "families:withdraw": lambda before, after, family: after["statuses"][family.study_id] == FamilyStatus.WITHDRAWN,
    "randomization:generate": lambda before, after, family: after["AllocationList"] == before["AllocationList"] + 1,
    "randomization:extend": lambda before, after, family: after["ListSegment"] == before["ListSegment"] + 1,
    "randomization:verify": lambda before, after, family: after["Verification"] == before["Verification"] + 1,
    "randomization:unseal": lambda before, after, family: after["Unsealing"] == before["Unsealing"] + 1,
    "randomization:unseal_approve": lambda before, after, family: after["unsealings agreed"] == 1,
    "randomization:review": lambda before, after, family: after["stops"][0][0] is not None,
    "randomization:review_approve": lambda before, after, family: (
        after["stops"][0][1] is not None and after["lists stopped"] == [("OEI", None)]
    ),
    "randomization:randomise": lambda before, after, family: (
        after["Allocation"] == before["Allocation"] + 1 and after["statuses"][family.study_id] == "randomised"
    ),
    "randomization:annotate": lambda before, after, family: (
        after["AllocationAnnotation"] == before["AllocationAnnotation"] + 1
    ),
    "randomization:unblind": lambda before, after, family: after["Unblinding"] == before["Unblinding"] + 1,
    "visits:contact_new": lambda before, after, family: (
        after["Contact"] == before["Contact"] + 1
        and Contact.objects.filter(family=family, author__username="frank", kind="phone_video").exists()
    ),
    "visits:contact_edit": lambda before, after, family: (
        after["history of Contact"] == before["history of Contact"] + 1
        and Contact.objects.get(family=family).duration_quarters == 6
    ),
    "visits:contact_void": lambda before, after, family: (
        Contact.objects.get(family=family).void_reason == "Logged with the wrong family"
        and after["contact days"] == [(family.pk, day, 0) for _family, day, _quarters in before["contact days"]]
        and after["history of Contact"] == before["history of Contact"] + 1
    ),
    "visits:partner_status": lambda before, after, family: (
        after["partner statuses"]["frank"] == PartnerStatus.ON_LEAVE
        and after["history of PartnerProfile"] == before["history of PartnerProfile"] + 1
    ),
    "visits:assign": lambda before, after, family: (
        after["assignments"] == [*before["assignments"], (family.study_id, "frank", None)]
        and after["InterventionPeriod"] == before["InterventionPeriod"] + 1
        and after["active families"]["frank"] == 1
    ),
    "notifications:profile": lambda before, after, family: (
        list(after["e-mail addresses"].values()).count("new.address@example.no") == 1
        and list(after["preferences"].values()) == ["en"]
    ),
    "notifications:unread": lambda before, after, family: [row[3] for row in after["messages"]] == [None],
    "notifications:mark_all_read": lambda before, after, family: all(row[3] for row in after["messages"]),
    "notifications:cancel": lambda before, after, family: (
        [row[1:] for row in after["messages"]] == [(MessageStatus.CANCELLED, 0, None, "Booked by phone already")]
    ),
    "notifications:retry": lambda before, after, family: (
        [row[1:3] for row in after["messages"]] == [(MessageStatus.PENDING, 0)]
    ),
    "followups:assessment": lambda before, after, family: (
        Assessment.objects.get(family=family, months=3).status == "completed"
        and after["history of Assessment"] == before["history of Assessment"] + 1
    ),
    "followups:book": lambda before, after, family: (
        Assessment.objects.get(family=family, months=3).booked_on == days_ago(-3)
    ),
    "followups:lost": lambda before, after, family: (
        after["lost to follow-up"] == 1 and Assessment.objects.get(family=family, months=3).status == "stopped"
    ),
    "tokens:list": lambda before, after, family: (
        len(after["API tokens"]) == len(before["API tokens"]) + 1
        and after["API tokens"][-1][1:] == ("matrix script", None)
    ),
    "tokens:revoke": lambda before, after, family: (
        [revoked_at is not None for username, _name, revoked_at in after["API tokens"]] == [True]
    ),
    "visits:end": lambda before, after, family: (
        InterventionPeriod.objects.get(family=family).end_reason == "family_ended"
        and not Assignment.objects.filter(family=family, ended_on__isnull=True).exists()
        and after["active families"]["frank"] == 0
    ),
}


@pytest.mark.parametrize(("url_name", "role", "expected"), list(_cases("post")))
def test_it_lets_only_the_allowed_roles_change_anything(request, as_role, oei, alice, url_name, role, expected):
    page = PAGES[url_name]
    family = family_for(page, request)
    url = url_of(url_name, family, page)
    client = as_role(role)
    before = research_records()

    response = client.post(url, form_data(url_name, site=oei, researcher=alice, request=request))

    assert_answer(response, expected, url=url, family=family)
    after = research_records()
    if expected.acted:
        assert EFFECT[url_name](before, after, family)
    else:
        assert after == before, "a refused POST changed the trial's records"
    if expected.form_error:
        assert response.context["form"].errors
    if url_name == "logout":
        assert "_auth_user_id" not in client.session


def test_it_does_not_reveal_whether_a_family_exists_at_another_site(client, oei, alice, bob):
    family = family_in_state("referred", site=oei, by=alice)
    client.force_login(bob)
    pages = {}
    for study_id in (family.study_id, "OEI-999"):
        response = client.get(reverse("families:detail", kwargs={"study_id": study_id}))
        assert response.status_code == 404
        # The pages differ only in their own address (the language form's "next") and CSRF token.
        page = response.content.decode().replace(study_id, "<study id>")
        pages[study_id] = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)
    assert pages[family.study_id] == pages["OEI-999"]


def detail_link(family: Family) -> str:
    return f'href="{reverse("families:detail", kwargs={"study_id": family.study_id})}"'


def test_it_lists_only_the_families_of_the_users_sites(client, oei, lar, alice, bob, lars, paula):
    at_oei = family_in_state("referred", site=oei, by=alice)
    at_lar = family_in_state("referred", site=lar, by=bob)
    for user, visible, hidden in [(alice, at_oei, at_lar), (bob, at_lar, at_oei), (lars, at_lar, at_oei)]:
        client.force_login(user)
        content = client.get(reverse("families:list")).content.decode()
        assert detail_link(visible) in content
        assert detail_link(hidden) not in content
    client.force_login(paula)
    content = client.get(reverse("families:list")).content.decode()
    assert detail_link(at_oei) in content and detail_link(at_lar) in content


# ---------------------------------------------------------------------------------------------------------
# The admin (its own URLs are guarded by staff status and model permissions)


def admin_login_redirect(path: str) -> str:
    return f"{reverse('admin:login')}?{urlencode({'next': path}, safe='/')}"


def test_it_sends_anonymous_visitors_of_the_admin_to_its_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.url == admin_login_redirect("/admin/")


@pytest.mark.parametrize("role", [role for role in LOGGED_IN if role not in ("data_manager", "administrator")])
def test_it_keeps_users_without_staff_status_out_of_the_admin(as_role, role):
    client = as_role(role)
    for path in ("/admin/", reverse("admin:families_family_changelist")):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.url == admin_login_redirect(path)


def test_it_opens_the_admin_for_the_administrator(client, adam, oei, alice):
    family_in_state("referred", site=oei, by=alice)
    client.force_login(adam)
    assert client.get("/admin/").status_code == 200
    assert client.get(reverse("admin:families_family_changelist")).status_code == 200
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 200


def test_it_lets_the_data_manager_change_the_trial_settings_but_not_see_families(client, dina, oei, alice):
    family = family_in_state("referred", site=oei, by=alice)
    client.force_login(dina)
    index = client.get("/admin/")
    assert index.status_code == 200
    assert reverse("admin:trial_trialsettings_changelist").encode() in index.content
    assert reverse("admin:families_family_changelist").encode() not in index.content

    settings_page = reverse("admin:trial_trialsettings_change", args=[TrialSettings.current().pk])
    assert client.get(settings_page).status_code == 200

    assert client.get(reverse("admin:families_family_changelist")).status_code == 403
    assert client.get(reverse("admin:families_family_change", args=[family.pk])).status_code == 403
    assert client.get(reverse("admin:families_screening_changelist")).status_code == 403
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403


# ---------------------------------------------------------------------------------------------------------
# set_language: a POST anyone may send, that only ever redirects within the site


@pytest.mark.parametrize("role", ["anonymous", "researcher_of_site", "no_role"])
def test_it_switches_the_language_by_post(as_role, role):
    client = as_role(role)
    response = client.post(reverse("set_language"), {"language": "nb", "next": "/families/"})
    assert response.status_code == 302
    assert response.url == "/families/"
    assert response.cookies["django_language"].value == "nb"


def test_it_does_not_switch_the_language_by_get(client):
    response = client.get(reverse("set_language"), {"language": "nb", "next": "/families/"})
    assert response.status_code == 302
    assert "django_language" not in response.cookies


def test_it_never_redirects_to_another_site_after_switching_the_language(client):
    response = client.post(reverse("set_language"), {"language": "nb", "next": "https://evil.example/"})
    assert response.status_code == 302
    assert response.url == "/"


@pytest.mark.parametrize("state", ["referred", "eligible", "consented"])
def test_it_offers_the_actions_only_to_those_who_may_take_them(client, oei, alice, carol, paula, state):
    family = family_in_state(state, site=oei, by=alice)
    actions = [
        reverse(name, kwargs={"study_id": family.study_id})
        for name in (
            "families:identifiers",
            "families:household",
            "families:screen",
            "families:consent",
            "families:withdraw",
        )
    ]
    client.force_login(alice)
    page = client.get(reverse("families:detail", kwargs={"study_id": family.study_id})).content.decode()
    assert any(f'href="{action}"' in page for action in actions)
    for viewer in (carol, paula):
        client.force_login(viewer)
        page = client.get(reverse("families:detail", kwargs={"study_id": family.study_id})).content.decode()
        assert [action for action in actions if f'href="{action}"' in page] == []


# ---------------------------------------------------------------------------------------------------------
# The Family Partner's work: a partner reaches only the families assigned to them now


def test_it_shows_a_family_partner_only_the_families_assigned_to_them_now(client, request, oei, lar, alice, bob, frank):
    frank_profile = frank_as_partner(request)
    fiona = partner(oei, "fiona")
    his = assigned_family(oei, researcher=alice, to=frank_profile)
    # His assignments to these two ended longer ago than the correction window, during which a former partner
    # still reads and corrects his own contacts (visits/tests/test_former_partner.py).
    after_the_window = days_ago(TrialSettings.current().contact_correction_days + 1)
    with days_back(40):
        reassigned = assigned_family(oei, researcher=alice, to=frank_profile)
        his_old_contact = log_contact(reassigned, by=frank)
        ended = assigned_family(oei, researcher=alice, to=frank_profile)
    visits_services.family_assign(
        family=reassigned, partner=fiona, started_on=after_the_window, assigned_by=alice, reason="Closer to fiona"
    )
    visits_services.intervention_end(family=ended, ended_on=after_the_window, reason="family_ended", ended_by=alice)
    not_his = {
        "a control family": randomised_family(oei, researcher=alice, arm=Arm.CONTROL),
        "another partner's family": assigned_family(oei, researcher=alice, to=fiona),
        "a family reassigned from him to another partner": reassigned,
        "a family whose intervention (and his assignment) ended": ended,
        "a family waiting for a Family Partner": randomised_family(oei, researcher=alice),
        "a family at another site": assigned_family(lar, researcher=bob, to=partner(lar, "lise")),
    }
    contacts = Contact.objects.count()
    client.force_login(frank)

    for what, family in not_his.items():
        for name in ("visits:family", "visits:contact_new"):
            url = reverse(name, kwargs={"study_id": family.study_id})
            assert client.get(url).status_code == 404, (what, name)
        url = reverse("visits:contact_new", kwargs={"study_id": family.study_id})
        assert client.post(url, contact_data()).status_code == 404, what
    edit = reverse("visits:contact_edit", kwargs={"pk": his_old_contact.pk})
    assert client.get(edit).status_code == 404
    assert client.post(edit, correction_data()).status_code == 404

    assert Contact.objects.count() == contacts
    assert Contact.objects.get(pk=his_old_contact.pk).duration_quarters == his_old_contact.duration_quarters
    for name in ("visits:family", "visits:contact_new"):
        assert client.get(reverse(name, kwargs={"study_id": his.study_id})).status_code == 200, name
    home = client.get(reverse("visits:partner_home")).content.decode()
    assert re.findall(r'data-partner-family="([^"]+)"', home) == [his.study_id]


@pytest.mark.parametrize("viewer", ["alice", "paula", "frank"])
def test_it_has_no_family_partner_work_page_for_a_control_family(client, request, oei, alice, viewer):
    frank_as_partner(request)
    control = randomised_family(oei, researcher=alice, arm=Arm.CONTROL)
    client.force_login(request.getfixturevalue(viewer))

    response = client.get(reverse("visits:family", kwargs={"study_id": control.study_id}))

    assert response.status_code == 404


def test_it_lets_a_family_partner_correct_only_the_contacts_they_logged(client, request, oei, alice, frank):
    fiona = partner(oei, "fiona")
    family = assigned_family(oei, researcher=alice, to=fiona)
    fionas_contact = log_contact(family, by=fiona.user)
    visits_services.family_assign(
        family=family, partner=frank_as_partner(request), started_on=days_ago(0), assigned_by=alice, reason="Leave"
    )
    before = research_records()
    client.force_login(frank)
    url = reverse("visits:contact_edit", kwargs={"pk": fionas_contact.pk})

    assert client.get(url).status_code == 403
    assert client.post(url, correction_data()).status_code == 403

    assert research_records() == before
    assert client.get(reverse("visits:family", kwargs={"study_id": family.study_id})).status_code == 200


def offered(page: str, urls: dict[str, str]) -> set[str]:
    """The actions whose address a page links to or posts to."""
    return {name for name, url in urls.items() if f'href="{url}"' in page or f'action="{url}"' in page}


def test_it_offers_the_family_partner_actions_only_to_those_who_may_take_them(
    client, request, oei, alice, paula, frank
):
    profile = frank_as_partner(request)
    family = assigned_family(oei, researcher=alice, to=profile)
    contact = log_contact(family, by=frank)
    waiting = randomised_family(oei, researcher=alice)
    actions = {
        "change the partner": reverse("visits:assign", kwargs={"study_id": family.study_id}),
        "end the intervention": reverse("visits:end", kwargs={"study_id": family.study_id}),
        "assign a partner": reverse("visits:assign", kwargs={"study_id": waiting.study_id}),
        "set the partner's status": reverse("visits:partner_status", kwargs={"pk": profile.pk}),
        "log a contact": reverse("visits:contact_new", kwargs={"study_id": family.study_id}),
        "correct the contact": reverse("visits:contact_edit", kwargs={"pk": contact.pk}),
    }
    pages = [
        reverse("families:detail", kwargs={"study_id": family.study_id}),
        reverse("families:detail", kwargs={"study_id": waiting.study_id}),
        reverse("visits:family", kwargs={"study_id": family.study_id}),
        reverse("visits:caseload"),
        reverse("visits:partner_home"),
    ]
    expected = {
        alice: {"change the partner", "end the intervention", "assign a partner", "set the partner's status"},
        paula: set(),
        frank: {"log a contact", "correct the contact"},
    }
    for user, may_take in expected.items():
        client.force_login(user)
        seen = set()
        for url in pages:
            response = client.get(url)
            if response.status_code == 200:
                seen |= offered(response.content.decode(), actions)
        assert seen == may_take, user.username
