"""Accessibility, as the foundation issue asks: "Works on a phone. Labels and errors are accessible;
keyboard use works." Checked in the real (Norwegian) browser: only the keyboard, what a screen reader
is given to read (names, descriptions, groups), colour contrast by WCAG's formula, and a phone.

Expected texts come from the Norwegian catalogue, as in test_enrolment_journeys.py, whose helpers
these tests share.
"""

import re

import pytest
from django.utils import translation
from django.utils.text import capfirst
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from families.models import ConsentDecision, FamilyStatus, StruggleArea
from families.tests.factories import days_ago, family_in_state
from tests.browser.test_enrolment_journeys import PHONE, answer, field, fill_registration, nb
from trial.tests.factories import PASSWORD

pytestmark = pytest.mark.browser

REQUIRED = "This field is required."
# WCAG 2.2, 1.4.3: text (and these badges' small bold text) needs 4.5:1 against its background.
TEXT_CONTRAST = 4.5
# WCAG 2.2, 1.4.11: what shows the keyboard's focus needs 3:1 against what is around it.
FOCUS_CONTRAST = 3
# WCAG 2.2, 2.5.8: a target is at least 24 by 24 CSS pixels.
TARGET_SIZE = 24


def family_url(family, page: str = "") -> str:
    return f"/families/{family.study_id}/{page}/" if page else f"/families/{family.study_id}/"


def submit(page: Page, button: Locator) -> None:
    with page.expect_navigation():
        button.click()


def tap(page: Page, target: Locator) -> None:
    """Taps a link or a submit button, as a finger on a phone, and waits for the page it leads to."""
    with page.expect_navigation():
        target.tap()


def save_button(page: Page) -> Locator:
    return page.locator("main form button[type=submit]")


def error_summary(page: Page) -> Locator:
    return page.get_by_role("alert").filter(has_text=nb("Correct the following:"))


def summary_item(label: str, error: str) -> str:
    """An error in the summary: the field's label (in Norwegian), then the error."""
    return f"{nb(label)}: {error}"


def unnamed_controls(page: Page) -> list[str]:
    """Every form control (hidden ones too, such as the consent form's fields for the other answer)
    that has no name from a <label for>, aria-label or aria-labelledby (or, for a button, its text)."""
    return page.evaluate(
        """() => {
            const text = (node) => (node ? node.textContent : "").replace(/\\s+/g, " ").trim();
            const controls = document.querySelectorAll("input:not([type=hidden]), select, textarea, button");
            return [...controls].filter((control) => {
                const names = [
                    ...[...control.labels].map(text),
                    control.getAttribute("aria-label") || "",
                    ...(control.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean)
                        .map((id) => text(document.getElementById(id))),
                    control.tagName === "BUTTON" ? text(control) : "",
                ];
                return !names.join("").trim();
            }).map((control) => control.outerHTML.slice(0, 120));
        }"""
    )


def ungrouped_options(page: Page) -> list[str]:
    """Radio buttons and checkboxes whose question a screen reader cannot read: not in a fieldset with
    a legend, nor in a role=group named by aria-labelledby."""
    return page.evaluate(
        """() => [...document.querySelectorAll("main input[type=radio], main input[type=checkbox]")]
            .filter((option) => {
                const fieldset = option.closest("fieldset");
                const legend = fieldset && fieldset.querySelector(":scope > legend");
                if (legend && legend.textContent.trim()) return false;
                const group = option.closest("[role=group][aria-labelledby]");
                const name = group && document.getElementById(group.getAttribute("aria-labelledby"));
                return !(name && name.textContent.trim());
            })
            .map((option) => option.outerHTML.slice(0, 120))"""
    )


def expect_errors_tied_to_their_fields(page: Page, expected: dict[str, str]) -> None:
    """Exactly the fields in `expected` (name → error) are marked invalid, each is described by its
    own error, and no error on the page is left unattached to a field."""
    invalid = page.locator("main form [aria-invalid=true]")
    marked = invalid.evaluate_all("(inputs) => [...new Set(inputs.map((input) => input.name))]")
    assert sorted(marked) == sorted(expected), "the fields marked invalid are the fields with errors"
    for number in range(invalid.count()):
        control = invalid.nth(number)
        error = expected[control.get_attribute("name")]
        expect(control).to_have_attribute("aria-describedby", re.compile(r"\S"))
        expect(control).to_have_accessible_description(re.compile(re.escape(error)))
    unattached = page.evaluate(
        """() => {
            const described = new Set([...document.querySelectorAll("[aria-describedby]")]
                .flatMap((control) => control.getAttribute("aria-describedby").split(/\\s+/)));
            return [...document.querySelectorAll("main .invalid-feedback")]
                .filter((error) => !described.has(error.id))
                .map((error) => error.textContent.trim());
        }"""
    )
    assert not unattached, f"errors no field is described by: {unattached}"


def contrast(element: Locator, *, focus_outline: bool = False) -> float:
    """WCAG 2.2's contrast ratio of an element's text (or of its focus outline, drawn around it) against
    what lies behind: the backgrounds of the element (not for its outline) and its ancestors, composited
    from the page down, translucent colours included."""
    return element.evaluate(
        """(element, focusOutline) => {
            const parse = (colour) => {
                const parts = colour.match(/^rgba?\\(([^)]*)\\)$/);
                if (!parts) throw new Error(`unexpected colour ${colour}`);
                const [r, g, b, a = 1] = parts[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
                return {r, g, b, a};
            };
            const over = (top, below) => ({
                r: top.r * top.a + below.r * (1 - top.a),
                g: top.g * top.a + below.g * (1 - top.a),
                b: top.b * top.a + below.b * (1 - top.a),
                a: 1,
            });
            const layers = [];
            for (let node = focusOutline ? element.parentElement : element; node; node = node.parentElement) {
                layers.unshift(parse(getComputedStyle(node).backgroundColor));
            }
            const background = layers.reduce((below, layer) => over(layer, below), {r: 255, g: 255, b: 255, a: 1});
            const style = getComputedStyle(element);
            const text = over(parse(focusOutline ? style.outlineColor : style.color), background);
            const luminance = ({r, g, b}) => {
                const [R, G, B] = [r, g, b].map((value) => {
                    const channel = value / 255;
                    return channel <= 0.03928 ? channel / 12.92 : ((channel + 0.055) / 1.055) ** 2.4;
                });
                return 0.2126 * R + 0.7152 * G + 0.0722 * B;
            };
            const [lighter, darker] = [luminance(text), luminance(background)].sort((x, y) => y - x);
            return (lighter + 0.05) / (darker + 0.05);
        }""",
        focus_outline,
    )


def expect_no_sideways_scrolling(page: Page) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{page.url} is {widths[0]}px wide on a {widths[1]}px phone"


def small_targets(page: Page) -> list[str]:
    """Visible buttons, and radio buttons and checkboxes with their labels, smaller than 24x24 px.
    An option counts as big enough when its label is, and the label covers the box (so that a tap
    beside the box, on the label, still ticks it) or the box itself is."""
    return page.evaluate(
        """(size) => {
            const box = (element) => element.getBoundingClientRect();
            const shown = (element) => box(element).width > 0 && getComputedStyle(element).visibility !== "hidden";
            const big = (rect) => rect.width >= size && rect.height >= size;
            const covers = (rect, inner) => {
                const [x, y] = [inner.left + inner.width / 2, inner.top + inner.height / 2];
                return rect.left <= x && x <= rect.right && rect.top <= y && y <= rect.bottom;
            };
            const buttons = [...document.querySelectorAll("button, .btn, [role=button], input[type=submit]")]
                .filter(shown).filter((button) => !big(box(button)));
            const options = [...document.querySelectorAll("input[type=radio], input[type=checkbox]")]
                .filter(shown).filter((option) => !big(box(option)) && ![...option.labels].some(
                    (label) => shown(label) && big(box(label)) && covers(box(label), box(option))));
            return [...buttons, ...options].map((element) => {
                const {width, height} = box(element);
                return `${Math.round(width)}x${Math.round(height)}: ${element.outerHTML.slice(0, 100)}`;
            });
        }""",
        TARGET_SIZE,
    )


def expect_one_h1_main_and_language(page: Page, language: str = "nb") -> None:
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("main")).to_have_count(1)
    expect(page.locator("html")).to_have_attribute("lang", language)
    images_without_text = page.locator("img:not([alt])")
    expect(images_without_text).to_have_count(0)


def expect_accessible(page: Page, name: str) -> None:
    """Every control of the page named (by its label or text), one heading, one main, the page's language."""
    assert not unnamed_controls(page), f"controls without a name on the {name} page"
    controls = page.locator("main :is(input:not([type=hidden]), select, textarea, button):visible")
    for number in range(controls.count()):
        expect(controls.nth(number)).to_have_accessible_name(re.compile(r"\S"))
    expect_one_h1_main_and_language(page)


# 1. Keyboard only


def test_it_logs_in_registers_and_finds_the_errors_with_the_keyboard_alone(page, alice, oei):
    page.goto("/")
    # The login page starts with the cursor in the username field (Django's autofocus): a keyboard
    # user types at once.
    expect(page.get_by_label(field(capfirst(nb("username"))))).to_be_focused()
    page.keyboard.type(alice.get_username())
    page.keyboard.press("Tab")
    expect(page.get_by_label(field(nb("Password")))).to_be_focused()
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(nb("Families"))

    # On every other page the first Tab reaches the skip link, which shows itself and skips the menu.
    page.keyboard.press("Tab")
    skip_link = page.get_by_role("link", name=nb("Skip to main content"))
    expect(skip_link).to_be_focused()
    shown = skip_link.bounding_box()
    assert shown["width"] > 50 and shown["height"] > 10 and shown["y"] >= 0, f"the focused skip link shows: {shown}"
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")
    register = page.get_by_role("main").get_by_role("link", name=nb("Register a family"), exact=True)
    expect(register).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(nb("Register a referred family"))

    page.keyboard.press("Tab")
    expect(skip_link).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_label(field(nb("Site")))).to_be_focused()
    page.keyboard.press("Tab")
    referral_date = page.get_by_label(field(nb("Referral date")))
    expect(referral_date).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")

    # The form comes back with the summary of its errors focused (a screen reader reads it at once),
    # and a Tab and an Enter take the user to the first field to correct.
    summary = error_summary(page)
    expect(summary).to_be_focused()
    expect(summary).to_be_in_viewport()
    expect(summary).to_contain_text(summary_item("Referral date", nb(REQUIRED)))
    expect(summary).to_contain_text(summary_item("Parent's full name", nb(REQUIRED)))
    page.keyboard.press("Tab")
    expect(summary.get_by_role("link").first).to_be_focused()
    page.keyboard.press("Enter")
    expect(referral_date).to_be_focused()
    expect(referral_date).to_be_in_viewport()


def test_it_changes_the_language_only_when_asked_not_while_the_keyboard_goes_through_the_choices(page, log_in, alice):
    log_in(page, alice)
    language = page.get_by_label(nb("Language"), exact=True)
    language.focus()
    # Arrowing to English picks it, as the keyboard goes through the choices; it must not send the page away.
    with pytest.raises(PlaywrightTimeoutError), page.expect_navigation(timeout=1000):
        page.keyboard.press("ArrowUp")
    expect(language).to_have_value("en")
    expect(page.locator("html")).to_have_attribute("lang", "nb")

    page.keyboard.press("Tab")
    with translation.override("nb"):
        change = translation.pgettext("language menu", "Change")
    expect(page.get_by_role("button", name=change, exact=True)).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "en")


# 2. Errors tied to their fields, questions read with their options


def test_it_ties_each_registration_error_to_its_field(page, log_in, alice, oei, results_dir):
    log_in(page, alice)
    page.goto("/families/new/")
    page.get_by_label(field(nb("Parent's birth year"))).first.fill("1800")
    submit(page, page.get_by_role("button", name=nb("Register"), exact=True))

    too_early = nb("A parent's birth year must lie between 1900 and this year.")
    no_child = nb("Add at least one child.")
    # Every mistake at once: the fields', the rows' and the household's (no child), each on its field.
    expect_errors_tied_to_their_fields(
        page,
        {
            "referral_date": nb(REQUIRED),
            "parents-0-birth_year": too_early,
            "children-0-birth_date": no_child,
            "contact_name": nb(REQUIRED),
        },
    )
    summary = error_summary(page)
    expect(summary.get_by_role("link")).to_have_text(
        [
            summary_item("Referral date", nb(REQUIRED)),
            summary_item("Parent's birth year", too_early),
            summary_item("Child's birth date", no_child),
            summary_item("Parent's full name", nb(REQUIRED)),
        ]
    )
    expect(page.get_by_role("group", name=nb("Parents"), exact=True).get_by_role("spinbutton")).to_have_count(2)
    expect(
        page.get_by_role("group", name=nb("Children"), exact=True).locator("input:not([type=hidden])")
    ).to_have_count(3)
    page.screenshot(path=results_dir / "a11y-register-desktop.png", full_page=True)


def test_it_ties_each_screening_error_to_its_question(page, log_in, alice, oei, results_dir):
    family = family_in_state("referred", site=oei, by=alice)
    log_in(page, alice)
    page.goto(family_url(family, "screen"))
    page.get_by_label(field(nb("Screening date"))).fill("")  # it starts as today
    submit(page, save_button(page))

    expect_errors_tied_to_their_fields(
        page,
        {
            "screened_on": nb(REQUIRED),
            "involved_with_child_welfare": nb(REQUIRED),
            "harmful_circumstances": nb(REQUIRED),
        },
    )
    assert not ungrouped_options(page)
    for question in (
        "Is the family already involved with child welfare services?",
        "Do the children live under potentially harmful circumstances?",
    ):
        group = page.get_by_role("group", name=field(nb(question)))
        expect(group.get_by_role("radio")).to_have_count(2)
        expect(group).to_have_accessible_description(nb(REQUIRED))
    struggles = page.get_by_role("group", name=field(nb("Areas the parents struggle in")))
    expect(struggles.get_by_role("checkbox")).to_have_count(8)

    # The summary's link to a question focuses its first answer, with the question in sight.
    question = nb("Is the family already involved with child welfare services?")
    error_summary(page).get_by_role("link", name=question).click()
    expect(page.get_by_role("group", name=field(question)).get_by_role("radio").first).to_be_focused()
    expect(page.get_by_role("group", name=field(question)).locator("legend")).to_be_in_viewport()
    page.screenshot(path=results_dir / "a11y-screen-desktop.png", full_page=True)


def test_it_reads_every_yes_no_question_with_its_answers_on_the_consent_and_withdrawal_forms(
    page, log_in, alice, oei, results_dir
):
    eligible = family_in_state("eligible", site=oei, by=alice)
    consented = family_in_state("consented", site=oei, by=alice)
    log_in(page, alice)

    page.goto(family_url(eligible, "consent"))
    assert not ungrouped_options(page)
    page.screenshot(path=results_dir / "a11y-consent-desktop.png", full_page=True)
    answer(page, "The family's answer", ConsentDecision.CONSENTED.label)
    page.get_by_label(field(nb("Consent form version"))).fill("")
    page.get_by_label(field(nb("Date"))).fill("")  # it starts as today
    submit(page, save_button(page))
    expect_errors_tied_to_their_fields(
        page,
        {
            "decided_on": nb(REQUIRED),
            "form_version": nb("Enter the version of the consent form the family signed."),
        },
    )

    page.goto(family_url(consented, "withdraw"))
    assert not ungrouped_options(page)
    submit(page, save_button(page))
    expect_errors_tied_to_their_fields(page, {"withdrawn_on": nb(REQUIRED), "data_may_be_kept": nb(REQUIRED)})
    keep_data = page.get_by_role("group", name=field(nb("May the data collected so far be kept and analysed?")))
    expect(keep_data).to_have_accessible_description(nb(REQUIRED))


# 3. Names, headings, landmarks and language


def test_it_names_every_form_control_and_gives_every_page_one_heading_a_main_and_its_language(
    open_page, log_in, alice, oei
):
    referred = family_in_state("referred", site=oei, by=alice)
    eligible = family_in_state("eligible", site=oei, by=alice)
    consented = family_in_state("consented", site=oei, by=alice)
    page = open_page()

    page.goto("/accounts/login/")
    assert not unnamed_controls(page), "controls without a name on the login page"
    expect_one_h1_main_and_language(page)
    log_in(page, alice)

    pages = {
        "families": "/families/",
        "family": family_url(consented),
        "register": "/families/new/",
        "screen": family_url(referred, "screen"),
        "screen again": family_url(eligible, "screen"),
        "consent": family_url(eligible, "consent"),
        "withdraw": family_url(consented, "withdraw"),
        "identifiers": family_url(consented, "identifiers"),
        "password change": "/accounts/password/",
    }
    for name, url in pages.items():
        page.goto(url)
        assert not unnamed_controls(page), f"controls without a name on the {name} page"
        controls = page.locator("main :is(input:not([type=hidden]), select, textarea, button):visible")
        for number in range(controls.count()):
            expect(controls.nth(number)).to_have_accessible_name(re.compile(r"\S"))
        expect_one_h1_main_and_language(page)

    english = open_page(locale="en-GB")
    english.goto("/accounts/login/")
    expect_one_h1_main_and_language(english, language="en")
    expect(english.get_by_role("heading", level=1)).to_have_text("Log in")


# 4. Contrast


def test_it_shows_the_status_badges_and_the_menu_in_readable_contrast(page, log_in, alice, oei):
    for status in ("referred", "eligible", "ineligible", "consented", "declined", "withdrawn"):
        family_in_state(status, site=oei, by=alice)
    log_in(page, alice)

    badges = page.locator("main [data-status]")
    expect(badges).to_have_count(6)
    for number in range(badges.count()):
        badge = badges.nth(number)
        ratio = contrast(badge)
        assert ratio >= TEXT_CONTRAST, f"the {badge.get_attribute('data-status')} badge has contrast {ratio:.2f}:1"

    menu_texts = page.locator("nav.navbar :is(a, button):visible")
    assert menu_texts.count() >= 4, "the brand, the menu's links, the language button and the user menu"
    for number in range(menu_texts.count()):
        text = menu_texts.nth(number)
        ratio = contrast(text)
        assert ratio >= TEXT_CONTRAST, f"{text.inner_text()!r} in the menu has contrast {ratio:.2f}:1"
        if "nav-link" in (text.get_attribute("class") or ""):
            text.hover()
            ratio = contrast(text)
            assert ratio >= TEXT_CONTRAST, f"{text.inner_text()!r} under the pointer has contrast {ratio:.2f}:1"


def test_it_shows_where_the_keyboard_is_in_the_menu(page, log_in, alice):
    log_in(page, alice)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name=nb("Skip to main content"))).to_be_focused()
    focused = page.locator(":focus")
    page.keyboard.press("Tab")
    seen = []
    for _ in range(20):  # more than the menu holds: the keyboard must leave it
        if not focused.evaluate("(element) => element.closest('nav.navbar') !== null"):
            break
        name = focused.evaluate("(element) => element.textContent.trim() || element.getAttribute('aria-label')")
        outline = focused.evaluate(
            "(element) => [getComputedStyle(element).outlineStyle, getComputedStyle(element).outlineWidth]"
        )
        assert outline[0] != "none" and float(outline[1].removesuffix("px")) >= 2, f"no focus outline on {name!r}"
        ratio = contrast(focused, focus_outline=True)
        assert ratio >= FOCUS_CONTRAST, f"the focus outline of {name!r} has contrast {ratio:.2f}:1 with the menu"
        seen.append(name)
        page.keyboard.press("Tab")
    else:
        pytest.fail(f"the keyboard never leaves the menu: {seen}")
    assert len(seen) >= 6, f"the brand, two links, the language menu and button and the user menu: {seen}"


# 5. A phone


def test_it_registers_screens_and_records_consent_on_a_phone_without_sideways_scrolling_or_small_targets(
    open_page, log_in, alice, oei, results_dir
):
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True)
    log_in(page, alice)

    page.goto("/families/new/")
    expect_no_sideways_scrolling(page)
    assert not small_targets(page), "targets smaller than 24x24 px on the registration form"
    tap(page, page.get_by_role("button", name=nb("Register"), exact=True))
    expect(error_summary(page)).to_be_in_viewport()
    expect_no_sideways_scrolling(page)
    fill_registration(page, site=oei, referred_on=days_ago(10), child_born=days_ago(365 * 5))
    page.screenshot(path=results_dir / "a11y-register-phone.png", full_page=True)
    tap(page, page.get_by_role("button", name=nb("Register"), exact=True))
    expect(page.locator("main h1 ~ [data-status]")).to_have_attribute("data-status", FamilyStatus.REFERRED)

    tap(page, page.get_by_role("link", name=nb("Screen"), exact=True))
    expect(page.get_by_role("heading", level=1)).to_contain_text(nb("Screening"))
    expect_no_sideways_scrolling(page)
    assert not small_targets(page), "targets smaller than 24x24 px on the screening form"
    page.get_by_label(field(nb("Screening date"))).fill(days_ago(5).isoformat())
    # A tap on an answer's label, beside its small round box, chooses the answer.
    for question in (
        "Is the family already involved with child welfare services?",
        "Do the children live under potentially harmful circumstances?",
    ):
        group = page.get_by_role("group", name=field(nb(question)))
        yes = group.locator("label").filter(has_text=nb("Yes"))
        box = yes.bounding_box()
        page.touchscreen.tap(box["x"] + box["width"] - 4, box["y"] + box["height"] / 2)
        expect(group.get_by_label(nb("Yes"), exact=True)).to_be_checked()
    for area in (StruggleArea.FINANCES, StruggleArea.MENTAL_HEALTH):
        page.get_by_label(nb(area.label), exact=True).tap()
    page.screenshot(path=results_dir / "a11y-screen-phone.png", full_page=True)
    tap(page, page.get_by_role("button", name=nb("Save screening")))
    expect(page.locator("main h1 ~ [data-status]")).to_have_attribute("data-status", FamilyStatus.ELIGIBLE)

    tap(page, page.get_by_role("link", name=nb("Record consent or decline")))
    expect_no_sideways_scrolling(page)
    answer(page, "The family's answer", ConsentDecision.CONSENTED.label)
    assert not small_targets(page), "targets smaller than 24x24 px on the consent form"
    page.get_by_label(field(nb("Date"))).fill(days_ago(1).isoformat())
    page.get_by_label(field(nb("Consent form version"))).fill("v2.1")
    expect_no_sideways_scrolling(page)
    page.screenshot(path=results_dir / "a11y-consent-phone.png", full_page=True)
    tap(page, page.get_by_role("button", name=nb("Save the decision")))
    expect(page.locator("main h1 ~ [data-status]")).to_have_attribute("data-status", FamilyStatus.CONSENTED)
