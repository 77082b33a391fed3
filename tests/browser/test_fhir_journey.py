"""A screener uploads a FHIR bundle: a prefilled form with sources, then submit; the result names each source."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

FORM = "/screen/NCT07193667/SLE"
BUNDLE = Path(__file__).resolve().parents[1] / "fixtures" / "fhir" / "sle_r4.json"
SERIOUS = ("serious", "critical")


def _prefill(page) -> None:
    page.goto(FORM)
    page.fill("#subject_id", "FHIR-0001")
    page.fill("#screening_date", "2026-11-02")  # the fixtures' labs are of October 2026
    page.set_input_files("#fhir-bundle", str(BUNDLE))
    page.get_by_role("button", name="Prefill from bundle").click()
    expect(page.locator("p.prefilled")).to_contain_text("values prefilled from sle_r4.json (FHIR R4)")


def test_a_bundle_prefills_the_form_the_screener_submits_and_the_result_shows_each_source(page, sign_in, screenshot):
    sign_in("screener")
    _prefill(page)
    expect(page.locator("#subject_id")).to_have_value("FHIR-0001")  # what was typed is kept
    expect(page.locator("#hgb")).to_have_value("11.8 g/dL")
    expect(page.locator("#tbil_uln")).to_have_value("1.2")
    expect(page.locator("#hgb-source")).to_have_text(
        "From the EHR: 11.8 g/dL · Observation/sle-1-hgb, 2026-10-20 (LOINC 718-7)"
    )
    expect(page.locator("#age-source")).to_contain_text("Patient/sle-1")
    expect(page.locator("#sledai_2k")).to_have_value("")  # the bundle lacks it: empty
    expect(page.locator("#sledai_2k-source")).to_have_count(0)
    screenshot("fhir-prefilled-form")
    page.fill("#sledai_2k", "10")
    page.fill("#wbc", "4,4")  # the screener corrects a value: its source is kept, marked as changed
    page.get_by_role("button", name="Decide and record").click()
    expect(page.locator(".decision")).to_be_visible()
    sources = page.locator("section.sources")
    expect(sources.get_by_role("heading", name="Values from the EHR")).to_be_visible()
    expect(sources.locator("tr[data-source=hgb]")).to_contain_text("Observation/sle-1-hgb")
    expect(sources.locator("tr[data-source=hgb]")).to_contain_text("2026-10-20")
    expect(sources.locator("tr[data-source=hgb]")).to_contain_text("LOINC 718-7")
    expect(sources.locator("tr[data-source=wbc]")).to_contain_text("changed by the screener")
    expect(sources.locator("tr[data-source=sledai_2k]")).to_have_count(0)
    screenshot("fhir-result-with-sources")


def test_a_bundle_that_is_not_fhir_is_refused_beside_the_upload(page, sign_in, screenshot, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Observation"}}]}'
    )
    sign_in("screener")
    page.goto(FORM)
    page.set_input_files("#fhir-bundle", str(bad))
    page.get_by_role("button", name="Prefill from bundle").click()
    alert = page.locator("#fhir-error")
    expect(alert).to_contain_text("The bundle was not used")
    expect(alert).to_contain_text("entry[0].resource.code")
    expect(page.locator("#fhir-bundle")).to_have_attribute("aria-invalid", "true")
    screenshot("fhir-refused-bundle")


@pytest.mark.parametrize("width", [1280, 390])
def test_the_prefilled_form_and_its_result_have_no_serious_accessibility_violation(page, sign_in, screenshot, width):
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    page.set_viewport_size({"width": width, "height": 900})
    sign_in("screener")
    found: dict[str, list[str]] = {}

    def check(name: str) -> None:
        violations = axe.run(page).response["violations"]
        serious = [v for v in violations if v["impact"] in SERIOUS]
        found[name] = [f"{v['id']}: {v['help']} ({len(v['nodes'])}: {v['nodes'][0]['target']})" for v in serious]
        screenshot(f"a11y-{name}-{width}")

    _prefill(page)
    check("fhir-prefilled")
    page.get_by_role("button", name="Decide and record").click()
    expect(page.locator("section.sources")).to_be_visible()
    check("fhir-result")
    assert not any(found.values()), found
