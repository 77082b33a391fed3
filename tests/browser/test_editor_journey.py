"""A writer amends NCT07193667 in a real browser, with the live rule editor.

The writer starts an amendment from the published version, opens criterion IN-03b of the new draft,
types a typo and sees the problem (line, column, caret) before saving; fixes it through the
completion list (keyboard only), reads the preview of what screeners will read, saves, and tries
the draft on one of its test cases. At 1280 and 390 px, with no console error.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from service import versions
from service.infra.models import db
from tests.browser.test_page_widths import WIDTHS, fits

TYPO = "anc >= 1.5 x10^9/L and not (csf_recieved and last_csf_date within 2 weeks before screening)"
FIXED = "anc >= 1.5 x10^9/L and not (csf_received and last_csf_date within 2 weeks before screening)"


def _in03b(app, number: int) -> str:
    with app.app_context():
        return next(c.rule for c in versions.find_version("NCT07193667", number).criteria if c.code == "IN-03b")


@pytest.mark.parametrize("size", list(WIDTHS))
def test_writer_amends_a_criterion_with_the_live_editor(app, page, sign_in, screenshot, size):
    width = WIDTHS[size]["width"]
    page.set_viewport_size(WIDTHS[size])
    page.set_default_timeout(20_000)
    sign_in("writer")

    # Start the amendment from the published version.
    page.goto("/admin/versions/")
    row = page.locator("tr", has=page.get_by_role("cell", name="published"))
    row.locator("input.action-checkbox").first.check()
    page.get_by_role("button", name="With selected").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("link", name="Start amendment", exact=True).click()
    expect(page.get_by_text("Draft version 2 of NCT07193667 started from version 1")).to_be_visible()

    # Open IN-03b of the draft, from the drafts on the admin's home page.
    page.goto("/admin/")
    page.get_by_role("link", name="criteria", exact=True).first.click()
    criterion = page.locator("tr", has=page.get_by_role("cell", name="IN-03b", exact=True))
    criterion.locator("a[title='Edit Record']").click()
    rule = page.locator("#rule")
    report = page.locator("#rule-report")
    expect(report.locator(".rule-preview")).to_contain_text("ANC is at least 1 x10^9/L")

    # A typo: the problem shows while typing, with its place and a caret, before anything is saved.
    rule.fill(TYPO)
    problem = report.locator(".rule-problem")
    expect(problem).to_have_count(1)
    expect(problem).to_contain_text("Line 1, column 29: unknown variable `csf_recieved`")
    expect(problem).to_contain_text("did you mean `csf_received`?")
    caret = problem.locator(".rule-caret")
    expect(caret).to_have_text(TYPO + "\n" + " " * 28 + "^")
    expect(rule).to_have_attribute("aria-invalid", "true")
    expect(report.locator(".rule-preview")).to_have_count(0)
    assert "/admin/criteria/edit/" in page.url  # still on the form: nothing saved
    fits(page, width)
    screenshot(f"editor-typo-{size}")

    # The fix, by completion: the keyboard takes the suggested name.
    start = TYPO.index("csf_recieved")
    rule.fill(TYPO[:start])
    rule.press("End")
    rule.press_sequentially("csf_re")
    listbox = page.locator("#rule-suggestions")
    expect(listbox.get_by_role("option").first).to_contain_text("csf_received")
    rule.press("Escape")
    expect(listbox).to_be_hidden()
    rule.press_sequentially("c")
    expect(listbox.get_by_role("option").first).to_contain_text("csf_received")
    screenshot(f"editor-completion-{size}")
    rule.press("Enter")
    expect(listbox).to_be_hidden()
    rule.press_sequentially(" and last_csf_date within 2 ")
    expect(listbox.get_by_role("option").first).to_be_visible()  # units after a number
    rule.press("Escape")
    rule.press_sequentially("weeks before screening)")
    expect(rule).to_have_value(FIXED)

    # Valid: no problem, and the sentence screeners will read.
    expect(problem).to_have_count(0)
    expect(rule).to_have_attribute("aria-invalid", "false")
    expect(report.locator(".rule-preview")).to_have_text(
        "Eligible only if ANC is at least 1.5 x10^9/L and not (Colony-stimulating factor given recently: yes"
        " and Last colony-stimulating factor dose is within 2 weeks before screening)."
    )
    fits(page, width)
    screenshot(f"editor-preview-{size}")

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Record was successfully saved.")).to_be_visible()
    assert _in03b(app, 2) == FIXED
    assert _in03b(app, 1) != FIXED  # the published version is untouched

    # Try the draft on a test case.
    page.goto("/admin/")
    page.get_by_role("link", name="try it", exact=True).first.click()
    page.locator("#case").select_option(index=1)
    page.get_by_role("button", name="Decide").click()
    expect(page.locator("#decision")).to_be_visible()
    fits(page, width)
    screenshot(f"editor-try-{size}")


def test_a_named_condition_is_checked_and_previewed_live_too(app, page, sign_in, screenshot):
    with app.app_context():
        draft = versions.amend("NCT07193667")
        variable_id = next(v.id for v in draft.variables if v.name == "end_stage_renal_failure")
        db.session.commit()
    sign_in("writer")
    page.goto(f"/admin/variables/edit/?id={variable_id}")
    condition = page.locator("#condition")
    report = page.locator("#rule-report")
    condition.fill("crcl < 15 mmol/L unless dialysis")
    problems = report.locator(".rule-problem")
    expect(problems.first).to_contain_text("`mmol/L` does not fit `crcl`")
    expect(problems).to_have_count(2)
    expect(problems.last).to_contain_text("`unless` needs a criterion")  # a named condition has no kind
    condition.fill("crcl < 15 mL/min")
    expect(report.locator(".rule-preview")).to_have_text(
        "True when Creatinine clearance (Cockcroft-Gault) is below 15 mL/min."
    )
    screenshot("editor-named-condition-wide")
