"""The protocol writer's journey in a real browser: a new protocol from scratch to a screened subject.

A writer creates a small protocol (no cohorts, a new variable with a plausible range, three
criteria put in order, a test case made with the dictionary's form), runs all its tests; a
reviewer signs and publishes it; a screener screens a subject against it. Nothing by API, no file
by hand. A second journey uploads a file the test writes as the user's own, and downloads it back.
At 1280 px and at 390 px wide, with no console error (the `page` fixture fails the test on any).
"""

from __future__ import annotations

import re

import pytest
import yaml
from playwright.sync_api import expect

import rules
from tests.browser.conftest import ARTIFACTS

SLOW = 20_000  # ms: pages that compile a draft and run its test cases, on a machine shared with others
WIDTHS = {"wide": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


WIDER = """[...document.querySelectorAll('body *')]
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth)
  .map((e) => `${e.tagName}.${e.className}`).slice(0, 8)"""


def _fits(page, width: int) -> None:
    """Nothing wider than the window: the page is read without scrolling sideways."""
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width, f"{page.url} is {overflow} px wide in a {width} px window: {page.evaluate(WIDER)}"


def _save(page) -> None:
    page.locator("input[type=submit][value=Save]").click()


def _switch(page, sign_in, username: str) -> None:
    """Sign out as a user does (the server ends the session), then sign in as the next one."""
    page.goto("/")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("Signed out.")).to_be_visible()
    sign_in(username)


@pytest.mark.parametrize("size", list(WIDTHS))
def test_a_writer_builds_a_protocol_a_reviewer_publishes_it_a_screener_uses_it(page, sign_in, screenshot, size):
    viewport = WIDTHS[size]
    page.set_viewport_size(viewport)
    sign_in("writer")
    page.goto("/admin/")
    page.get_by_role("link", name="Write protocols").last.click()  # the page's link (the menu folds at 390 px)
    page.get_by_role("link", name="New protocol").click()
    page.fill("#code", "DEMO-7")
    page.fill("#title", "A small trial written in the browser")
    screenshot(f"writer-new-protocol-{size}")
    _save(page)
    expect(page.locator("h2")).to_contain_text("DEMO-7 version 1")
    expect(page.locator("#cohorts")).to_contain_text("No cohorts")

    # The dictionary: a number with a plausible range, and a yes/no.
    for name, label, kind, unit, low, high in (
        ("age", "Age", "number", "years", "0", "120"),
        ("pregnant", "Pregnant", "boolean", "", "", ""),
    ):
        page.get_by_role("link", name="Add variable").click()
        page.fill("#name", name)
        page.fill("#label", label)
        page.fill("#type", kind)
        page.fill("#unit", unit)
        page.fill("#minimum", low)
        page.fill("#maximum", high)
        page.fill("#section", "Screening")
        if name == "age":
            screenshot(f"writer-variable-{size}")
        _save(page)
        expect(page.locator(f"[data-variable='{name}']")).to_be_visible()
    expect(page.locator("[data-variable='age']")).to_contain_text("0–120")

    # Three criteria, then the exclusion moved to the top.
    for code, kind, text, rule in (
        ("IN-01", "inclusion", "Adults", "age >= 18 years"),
        ("IN-02", "inclusion", "Not older than 75", "age <= 75 years"),
        ("EX-01", "exclusion", "Pregnancy", "pregnant"),
    ):
        page.get_by_role("link", name="Add criterion").click()
        page.fill("#code", code)
        page.select_option("#kind", kind)
        page.fill("#text", text)
        page.fill("#rule", rule)
        _save(page)
        expect(page.locator(f"[data-criterion='{code}']")).to_be_visible()
    page.get_by_role("button", name="Move EX-01 up").click()
    page.get_by_role("button", name="Move EX-01 up").click()
    expect(page.locator("[data-criterion]").first).to_have_attribute("data-criterion", "EX-01")
    _fits(page, viewport["width"])
    screenshot(f"writer-workbench-{size}")

    # A test case through the dictionary's form: a value out of range is refused on its field first.
    page.get_by_role("link", name="Add test case").click()
    page.fill("#name", "A 40-year-old, not pregnant")
    page.fill("#screening_date", "2026-11-02")
    page.fill("#age", "400")
    page.select_option("#pregnant", "no")
    page.select_option("#expect", "eligible")
    page.select_option("[data-outcome='IN-01']", "pass")
    page.select_option("[data-outcome='EX-01']", "pass")
    page.get_by_role("button", name="Save test case").click()
    expect(page.locator("#age-error")).to_contain_text("Age: 400: expected a plausible value between 0 and 120")
    _fits(page, viewport["width"])
    screenshot(f"writer-test-case-refused-{size}")
    page.fill("#age", "40")
    page.get_by_role("button", name="Save test case").click()
    expect(page.locator("#testcases")).to_contain_text("A 40-year-old, not pregnant")

    page.get_by_role("link", name="Run all tests").click()
    expect(page.locator("[data-tests='passed']")).to_contain_text("All 1 test case(s) pass", timeout=SLOW)
    _fits(page, viewport["width"])
    screenshot(f"writer-tests-passed-{size}")
    page.get_by_role("link", name="Try it").last.click()  # the page's link, not the menu's
    page.select_option("#case", "A 40-year-old, not pregnant")
    page.get_by_role("button", name="Decide").click()
    expect(page.locator("[data-decision='eligible']")).to_contain_text("Version 1: Eligible", timeout=SLOW)
    expect(page.locator("[data-criterion='IN-01']")).to_contain_text("pass")
    _fits(page, viewport["width"])
    screenshot(f"writer-try-it-{size}")

    # The reviewer signs from the drafts list.
    _switch(page, sign_in, "reviewer")
    page.goto("/admin/")
    page.locator("li", has_text="DEMO-7 version 1").get_by_role("link", name="sign and publish").click()
    expect(page.locator("h2")).to_contain_text("Sign and publish DEMO-7 version 1", timeout=SLOW)
    expect(page.locator("[data-tests='passed']")).to_be_visible()
    page.fill("#password", "pw-reviewer")
    page.fill("#reason", "A new protocol, its criteria and test case read")
    _fits(page, viewport["width"])
    page.get_by_role("button", name="Sign and publish").click()
    expect(page.get_by_text("DEMO-7 version 1 published")).to_be_visible(timeout=SLOW)
    screenshot(f"writer-published-{size}")

    # A screener screens a subject against it.
    _switch(page, sign_in, "screener")
    page.goto("/screen")
    page.locator("section", has_text="DEMO-7").get_by_role("link", name="Screen a subject").click()
    page.fill("#subject_id", f"D7-{size}")
    page.fill("#age", "52")
    page.select_option("#pregnant", "no")
    page.get_by_role("button", name="Decide and record").click()
    expect(page.locator(".decision")).to_contain_text("Eligible")
    _fits(page, viewport["width"])
    screenshot(f"writer-screened-{size}")


def test_a_writer_uploads_a_protocol_file_and_downloads_it_back(page, sign_in, screenshot, tmp_path):
    """The file is the user's own (written here as they would have it); a broken one is refused whole first."""
    data = rules.seed_protocol().to_dict()
    data.update(protocol="UP-1", title="Uploaded from a file")
    broken = {**data, "criteria": [{**data["criteria"][0], "rule": "wbcc >= 3 x10^9/L"}, *data["criteria"][1:]]}
    good_file, broken_file = tmp_path / "UP-1.yaml", tmp_path / "UP-1-broken.yaml"
    good_file.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    broken_file.write_text(yaml.safe_dump(broken, sort_keys=False, allow_unicode=True), encoding="utf-8")

    sign_in("writer")
    page.goto("/admin/workbench/")
    page.get_by_role("link", name="Upload a protocol file").click()
    page.set_input_files("#file", str(broken_file))
    page.get_by_role("button", name="Upload").click()
    refused = page.locator("[data-upload='refused']")
    expect(refused).to_contain_text("Nothing was stored")
    expect(refused).to_contain_text("criteria[0] (IN-01")
    expect(refused).to_contain_text("unknown variable `wbcc`")
    screenshot("writer-upload-refused")

    page.set_input_files("#file", str(good_file))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("Uploaded as a new protocol: UP-1 version 1 (draft).")).to_be_visible(timeout=SLOW)
    screenshot("writer-uploaded")
    with page.expect_download() as download:
        page.locator("[data-download='yaml']").click()
    assert download.value.suggested_filename == "UP-1-v1.yaml"
    path = ARTIFACTS.parent / "UP-1-v1.yaml"
    download.value.save_as(path)
    assert rules.load_protocol(path).content_hash == rules.loads_protocol(good_file.read_text()).content_hash
    page.get_by_role("link", name="Run all tests").click()
    expect(page.locator("[data-tests='passed']")).to_contain_text(
        re.compile(rf"All {len(data['test_cases'])} test case"), timeout=SLOW
    )
