"""The three journeys in a real browser: a writer drafts an amendment, a reviewer publishes it, a screener screens."""

from __future__ import annotations

import json
import re
import urllib.request

from playwright.sync_api import expect

GOOD_RULE = "anc >= 1.5 x10^9/L and not (csf_received and last_csf_date within 2 weeks before screening)"


def _api(token: str, base: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body or {}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _run_action(page, version_row: str, action: str) -> None:
    page.check(f"input.action-checkbox[value='{version_row}']")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=re.compile("With selected")).click()
    page.locator(f"a[onclick*=\"execute('{action}')\"]").click()
    page.wait_for_load_state()


def test_writer_drafts_an_amendment_and_is_shown_a_bad_rule_first(page, sign_in, screenshot):
    sign_in("writer")
    page.goto("/admin/versions/")
    screenshot("admin-versions")
    _run_action(page, "1", "amend")
    expect(page.get_by_text("Draft version 2 of NCT07193667 started from version 1.")).to_be_visible()

    page.goto("/admin/criteria/?version_number=2&search=IN-03b")
    page.locator("a[title='Edit Record']").first.click()
    rule = page.locator("textarea#rule")
    rule.fill("anc >= 1.5 mg/dL")
    page.locator("input[type=submit][value='Save']").click()
    error = page.locator("pre.rule-error")
    expect(error).to_contain_text("`mg/dL` does not fit `anc` (x10^9/L): `mg/dL` is a mass concentration")
    expect(error).to_contain_text("count per volume at line 1, column 8")
    screenshot("admin-criterion-inline-error")

    page.locator("textarea#rule").fill(GOOD_RULE)
    page.locator("input[type=submit][value='Save']").click()
    expect(page.get_by_text("Record was successfully saved.")).to_be_visible()
    expect(page.locator("table.model-list")).to_contain_text("anc >= 1.5 x10^9/L")


def test_reviewer_publishes_the_amendment(page, sign_in, screenshot, live_server, tokens):
    draft = _api(tokens["writer"], live_server, "/api/v1/protocols/NCT07193667/versions")
    sign_in("reviewer")
    page.goto("/admin/versions/")
    version_id = page.locator("input.action-checkbox").nth(1).get_attribute("value")
    _run_action(page, version_id, "publish")
    expect(page.get_by_role("heading", name=f"Sign and publish NCT07193667 version {draft['version']}")).to_be_visible()
    page.fill("#password", "pw-reviewer")
    page.fill("#reason", "Approved per amendment review")
    screenshot("admin-sign")
    page.get_by_role("button", name="Sign and publish").click()
    expect(page.get_by_text(f"NCT07193667 version {draft['version']} published")).to_be_visible()
    expect(page.get_by_text("signed by reviewer")).to_be_visible()
    screenshot("admin-published")


def test_screener_screens_a_subject_and_sees_the_failing_criterion(page, sign_in, screenshot):
    sign_in("screener")
    page.get_by_role("link", name="Screen a subject").first.click()
    page.get_by_role("link", name="SLE", exact=True).click()
    page.fill("#subject_id", "S-0042")
    page.fill("#age", "40")
    page.select_option("#sex", "female")
    page.fill("#anc", "800 /µL")
    page.fill("#hgb", "11.8 g/dL")
    page.select_option("#hbsag_positive", "no")
    screenshot("screening-form")
    page.get_by_role("button", name="Decide and record").click()

    expect(page.locator(".decision")).to_contain_text("Not eligible")
    failing = page.locator("tr.fail")
    expect(failing).to_have_count(1)
    expect(failing).to_contain_text("IN-03b")
    expect(failing).to_contain_text("ANC 0.8 ×10⁹/L (submitted 800 /µL) is below 1 ×10⁹/L")
    expect(page.locator("tr.pass").filter(has_text="IN-03c")).to_contain_text(
        "Haemoglobin 118 g/L (submitted 11.8 g/dL)"
    )
    screenshot("screening-result")

    page.get_by_role("link", name="Screening log").click()
    expect(page.locator("table")).to_contain_text("S-0042")
    screenshot("screening-log")
    page.goto("/protocols/NCT07193667/attrition")
    expect(page.get_by_role("row").filter(has_text="IN-03b").get_by_role("cell")).to_have_text(
        ["0", "0%", "−1", "0", ""]
    )
    screenshot("attrition")


def test_bad_form_values_are_shown_inline_and_nothing_is_stored(page, sign_in):
    sign_in("screener")
    page.goto("/screen/NCT07193667/SLE")
    page.fill("#subject_id", "S-0043")
    page.fill("#hgb", "lots")
    page.get_by_role("button", name="Decide and record").click()
    expect(page.locator(".banner")).to_contain_text("Nothing was stored")
    expect(page.locator(".field.invalid")).to_contain_text("'lots': expected a number in g/L")
    page.goto("/log")
    expect(page.get_by_text("No screening matches these filters.")).to_be_visible()
