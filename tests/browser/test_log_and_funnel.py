"""The screening log's pages and filters, and the attrition funnel, in a real browser; accessible at 1280 and 390 px."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import expect

SERIOUS = ("serious", "critical")


@pytest.fixture
def live_server(gunicorn):
    """The server with log pages of two screenings, so a handful of subjects makes several pages."""
    return gunicorn(workers=1, LOG_PAGE_SIZE="2").url


@pytest.fixture
def screened(live_server, subject, bearer):
    """Screen subjects through the API as SITE-1's screener: (cohort, subject id, changes; None removes)."""

    def screen(*subjects: tuple[str, str, dict[str, Any]]) -> None:
        for cohort, subject_id, changes in subjects:
            inputs = subject(cohort, changes)
            body = {
                "protocol": "NCT07193667",
                "subject_id": subject_id,
                "site": "SITE-1",
                "cohort": inputs.pop("cohort"),
                "screening_date": inputs.pop("screening_date"),
                "inputs": inputs,
            }
            request = urllib.request.Request(
                live_server + "/api/v1/screenings",
                data=json.dumps(body).encode(),
                headers={**bearer("screener"), "Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=90) as response:  # a first decision compiles: slow when busy
                assert response.status == 201

    return screen


def _subjects(page) -> list[str]:
    return page.locator("table tbody tr td:nth-child(2)").all_inner_texts()


def test_the_log_pages_keeping_its_filters_and_names_a_bad_one(page, sign_in, screened, screenshot):
    screened(*[("SLE", f"S-{i}", {}) for i in range(5)], ("ITP", "I-1", {}))
    sign_in("screener")
    page.goto("/log")
    page.select_option("#filter-cohort", "SLE")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#log-count")).to_have_text("Screenings 1–2 of 5.")
    assert _subjects(page) == ["S-4", "S-3"]
    page.get_by_role("navigation", name="Log pages").get_by_role("link", name="Next page →").click()
    expect(page.locator("#log-count")).to_have_text("Screenings 3–4 of 5.")
    assert _subjects(page) == ["S-2", "S-1"] and "cohort=SLE" in page.url
    expect(page.locator("#filter-cohort")).to_have_value("SLE")
    screenshot("log-page-2")
    page.get_by_role("link", name="← Previous page").click()
    assert _subjects(page) == ["S-4", "S-3"]

    page.goto("/log?cohort=SLE&decision=maybe&version=two")
    expect(page.get_by_role("alert")).to_contain_text("2 filters could not be used and are marked below")
    expect(page.locator("#filter-decision-error")).to_have_text(
        "'maybe': expected one of 'eligible', 'not_eligible' or 'incomplete'; not applied"
    )
    expect(page.locator("#filter-version")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#filter-version")).to_have_value("two")  # kept as typed, to correct
    expect(page.locator("#log-count")).to_have_text("Screenings 1–2 of 5.")  # the cohort still applies
    screenshot("log-bad-filter")


def test_the_attrition_funnel_by_cohort_and_period(page, sign_in, screened, screenshot):
    screened(
        ("SLE", "A", {}),
        ("SLE", "B", {"wbc": 2, "severe_drug_allergy": True}),
        ("SLE", "C", {"severe_drug_allergy": True}),
        ("SLE", "D", {"hemodynamically_stable": None}),
        ("ITP", "F", {}),
    )
    sign_in("screener")
    page.goto("/protocols/NCT07193667/attrition")
    funnel = page.get_by_role("table")
    expect(funnel.locator("caption")).to_contain_text("5 screened, 2 eligible, 2 not eligible, 1 incomplete")
    page.select_option("#filter-cohort", "SLE")
    page.get_by_role("button", name="Show").click()
    expect(funnel.locator("caption")).to_contain_text("SLE subjects, all screening dates: 4 screened")
    row = funnel.get_by_role("row").filter(has_text="IN-03a")
    expect(row.get_by_role("cell")).to_have_text(["3", "75%", "−1", "0", ""])
    expect(funnel.get_by_role("row").filter(has_text="EX-01").get_by_role("cell")).to_have_text(
        ["2", "50%", "−1", "0", ""]
    )
    screenshot("attrition-funnel-sle")
    page.fill("#filter-from", "2099-01-01")
    page.get_by_role("button", name="Show").click()
    expect(funnel.locator("caption")).to_contain_text("screened from 2099-01-01: 0 screened")


@pytest.mark.parametrize("width", [1280, 390])
def test_the_log_and_the_funnel_have_no_serious_accessibility_violation(page, sign_in, screened, screenshot, width):
    from axe_playwright_python.sync_playwright import Axe

    screened(("SLE", "A", {}), ("SLE", "B", {"wbc": 2}), ("SLE", "C", {}), ("ITP", "F", {}))
    axe = Axe()
    page.set_viewport_size({"width": width, "height": 900})
    sign_in("screener")
    found: dict[str, list[str]] = {}
    for name, path in {
        "log-paged": "/log?cohort=SLE&page=2",
        "log-bad-filters": "/log?cohort=LUPUS&from=2026-13-01&decision=maybe",
        "attrition-funnel": "/protocols/NCT07193667/attrition?cohort=SLE",
        "attrition-bad-filters": "/protocols/NCT07193667/attrition?cohort=LUPUS&to=yesterday",
    }.items():
        page.goto(path)
        results = axe.run(page)
        serious = [v for v in results.response["violations"] if v["impact"] in SERIOUS]
        found[name] = [f"{v['id']}: {v['help']} ({len(v['nodes'])}: {v['nodes'][0]['target']})" for v in serious]
        screenshot(f"a11y-{name}-{width}")
    assert not any(found.values()), found
