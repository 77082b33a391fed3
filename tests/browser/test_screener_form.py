"""The cohort-aware screening form in a real browser: fewer tab stops, re-screen completes, accessible (axe-core)."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import expect

import rules
from rules.relevance import input_sections
from service.web.screening_pages import form_class

FORM = "/screen/NCT07193667/SLE"


def _tab_stops(page) -> tuple[int, int]:
    """From the subject id to the submit button: the controls a keyboard user tabs through, and the Tab presses.

    Presses count more: chromium tabs through a date input's day, month, year and picker."""
    page.focus("#subject_id")
    presses, controls = 0, {"subject_id"}
    while not page.evaluate("document.activeElement.matches('form.screening button[type=submit]:not([formaction])')"):
        page.keyboard.press("Tab")
        presses += 1
        controls.add(page.evaluate("document.activeElement.id || document.activeElement.outerHTML"))
        assert presses < 400, "the submit button is never reached"
    return len(controls), presses + 1  # the subject id itself


def _full_form_stops(app) -> int:
    """The form of every input variable of every cohort: its focusable controls, from subject id to submit."""
    compiled = rules.compile_protocol(rules.seed_protocol())
    with app.test_request_context():
        form = form_class(compiled, input_sections(compiled.dictionary))(meta={"csrf": False})
    return sum(1 for field in form if field.type != "HiddenField") + 1  # + the submit button


def test_an_sle_subject_takes_at_most_half_the_tab_stops_of_the_full_form(app, page, sign_in, screenshot):
    full = _full_form_stops(app)
    sign_in("screener")
    page.goto(FORM)
    before, _ = _tab_stops(page)
    # A man with SLE, off immunosuppressants, nothing in his history, labs in range: follow-ups stay closed.
    for question, answer in {
        "sex": "male",
        "csf_received": "no",
        "immunosuppressant_received": "no",
        "conventional_treatment_failed": "yes",
        "informed_consent_signed": "yes",
        "infection_present_or_suspected": "no",
        "malignancy_history": "no",
        "other_trial_participation": "no",
        "hbsag_positive": "no",
        "hbcab_positive": "no",
        "hcv_antibody_positive": "no",
        "mental_illness": "no",
    }.items():
        page.select_option(f"#{question}", answer)
    for lab, value in {
        "wbc": "4.2",
        "anc": "2,1",
        "hgb": "118",
        "alt": "30",
        "alt_uln": "40",
        "ast": "28",
        "ast_uln": "40",
        "tbil": "12",
        "tbil_uln": "21",
        "creatinine": "70",
        "sledai_2k": "10",
        "conventional_treatment_duration": "9",
    }.items():
        page.fill(f"#{lab}", value)
    expect(page.locator("#alt_elevation_myopathy")).to_be_hidden()  # ALT within 3 x ULN
    expect(page.locator("#relapse_after_remission")).to_be_hidden()  # failed for over 6 months already
    expect(page.locator("#bilag_a_count")).to_be_hidden()  # SLEDAI-2K of 8 or more needs no BILAG
    expect(page.locator("#last_csf_date")).to_be_hidden()
    expect(page.locator("#pregnant")).to_be_hidden()
    expect(page.locator("#serum_hcg_negative")).to_be_hidden()
    expect(page.locator("#partner_childbearing_potential")).to_be_visible()
    expect(page.locator("#conventional_treatment_duration")).to_be_visible()
    expect(page.get_by_role("group", name="Immune thrombocytopenia")).to_have_count(0)
    stops, presses = _tab_stops(page)
    screenshot("screening-form-cohort-aware")
    print(f"tab stops: full form {full}, SLE form unanswered {before}, SLE male subject {stops} ({presses} presses)")
    # A unit other than the default is typed after the number: no unit menus. Counted the same way, the
    # full form has 99 controls (111 with the menus it had); the SLE subject's form 48, in 51 Tab presses.
    assert stops <= 0.50 * full, (stops, full)
    page.fill("#anc", "2100 /µL")  # as the lab report prints it; the default unit beside it steps aside
    expect(page.locator("[data-field=anc] [data-unit-suffix]")).to_be_hidden()
    expect(page.locator("[data-field=wbc] [data-unit-suffix]")).to_have_text("×10⁹/L")


def test_follow_ups_open_and_close_with_the_answers(page, sign_in):
    sign_in("screener")
    page.goto(FORM)
    date = page.locator("#last_csf_date")
    expect(date).to_be_hidden()
    page.select_option("#csf_received", "yes")
    expect(date).to_be_visible()
    date.fill("2026-11-01")
    page.select_option("#csf_received", "no")
    expect(date).to_be_hidden()
    expect(date).to_be_disabled()  # not submitted: it cannot change the decision
    expect(page.locator("#hbcab_positive")).to_be_hidden()  # waits for HBsAg: positive excludes already
    page.select_option("#hbsag_positive", "no")
    page.select_option("#hbcab_positive", "yes")
    expect(page.locator("#hbv_dna")).to_be_visible()
    page.select_option("#sex", "female")
    expect(page.locator("#pregnant")).to_be_visible()
    expect(page.locator("#serum_hcg_negative")).to_be_hidden()
    page.select_option("#childbearing_potential", "yes")
    expect(page.locator("#serum_hcg_negative")).to_be_visible()
    myopathy = page.locator("#alt_elevation_myopathy")
    page.fill("#alt", "1 µkat/L")  # 60 U/L: within 3 x ULN, in the unit typed after each number
    page.fill("#alt_uln", "40 U/L")
    expect(myopathy).to_be_hidden()
    page.fill("#alt", "3 ukat/l")  # 180 U/L
    expect(myopathy).to_be_visible()
    page.fill("#alt_uln", "0.67")  # a ULN without a unit is in ALT's: 40.2 U/L
    expect(myopathy).to_be_visible()
    page.fill("#alt_uln", "1.2")  # 72 U/L: 180 is within 3 x ULN
    expect(myopathy).to_be_hidden()


def test_errors_are_marked_on_their_fields_and_focused(page, sign_in, screenshot):
    sign_in("screener")
    page.goto(FORM)
    page.fill("#subject_id", "S-0044")
    page.fill("#alt", "50")
    page.fill("#alt_uln", "forty")
    page.fill("#hgb", "11,8")  # a decimal comma: read as 11.8
    page.get_by_role("button", name="Decide and record").click()
    uln = page.locator("#alt_uln")
    expect(uln).to_have_attribute("aria-invalid", "true")
    expect(uln).to_be_focused()
    expect(page.locator("#alt_uln-error")).to_contain_text("'forty': expected a number")
    expect(page.locator("#hgb")).not_to_have_attribute("aria-invalid", "true")
    screenshot("screening-form-uln-error")


def _api_screen(token: str, base: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        base + "/api/v1/screenings",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=90) as response:  # a first decision compiles: slow when busy
        return json.loads(response.read())


def test_an_incomplete_subject_is_completed_by_re_screen_typing_only_the_missing(
    page, sign_in, screenshot, live_server, subject, tokens
):
    today = dt.date.today()
    inputs = subject("SLE", {"wbc": None, "hemodynamically_stable": None, "cohort": None, "screening_date": None})
    inputs["serum_hcg_date"] = (today - dt.timedelta(days=2)).isoformat()
    inputs["last_immunosuppressant_date"] = (today - dt.timedelta(days=120)).isoformat()
    first = _api_screen(
        tokens["screener"],
        live_server,
        {
            "protocol": "NCT07193667",
            "subject_id": "S-0050",
            "site": "SITE-1",
            "cohort": "SLE",
            "screening_date": today.isoformat(),
            "inputs": inputs,
        },
    )
    assert first["result"]["decision"] == "incomplete"
    sign_in("screener")
    page.goto(f"/screenings/{first['id']}")
    collect = page.locator("section.collect")
    expect(collect).to_contain_text("IN-03a: White blood cell count")
    expect(collect).to_contain_text("IN-03j: Haemodynamically stable")
    expect(collect.locator("li")).to_have_count(2)
    screenshot("screening-result-incomplete")
    page.get_by_role("link", name="Re-screen with these values").click()
    expect(page.locator("#subject_id")).to_have_value("S-0050")
    expect(page.locator("#anc")).to_have_value("2.1")
    page.fill("#wbc", "4,2")
    page.select_option("#hemodynamically_stable", "yes")
    page.get_by_role("button", name="Decide and record").click()
    expect(page.locator(".decision")).to_contain_text("Eligible")
    expect(page.get_by_text(f"Re-screening of #{first['id']}")).to_be_visible()
    screenshot("screening-result-re-screened")


SERIOUS = ("serious", "critical")


@pytest.mark.parametrize("width", [1280, 390])
def test_every_screener_page_has_no_serious_accessibility_violation(page, sign_in, screenshot, width):
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    page.set_viewport_size({"width": width, "height": 900})
    sign_in("screener")
    pages = {"choose": "/screen", "form": FORM}
    found: dict[str, list[str]] = {}

    def check(name: str) -> None:
        results = axe.run(page)
        serious = [v for v in results.response["violations"] if v["impact"] in SERIOUS]
        found[name] = [f"{v['id']}: {v['help']} ({len(v['nodes'])}: {v['nodes'][0]['target']})" for v in serious]
        screenshot(f"a11y-{name}-{width}")

    for name, path in pages.items():
        page.goto(path)
        check(name)
    page.fill("#subject_id", "S-0060")
    page.fill("#alt_uln", "forty")
    page.get_by_role("button", name="Decide and record").click()
    check("form-errors")
    page.fill("#alt_uln", "40")
    page.fill("#anc", "800 /uL")
    page.get_by_role("button", name="Decide and record").click()
    check("result-not-eligible")
    page.goto(FORM)
    page.fill("#subject_id", "S-0061")
    page.get_by_role("button", name="Decide and record").click()
    check("result-incomplete")
    page.get_by_role("link", name="Re-screen with these values").click()
    check("re-screen")
    page.goto("/log")
    check("log")
    page.goto("/protocols/NCT07193667/attrition")
    check("attrition")
    assert not any(found.values()), found
