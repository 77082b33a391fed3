"""The amendment reviewer's journey in a real browser, from sign-in to signature, with no API call by hand.

A writer's draft (a stricter ANC threshold) and a screening log are set up beforehand; the reviewer
reads the diff, runs the impact replay and watches it progress, opens a screening it moves, downloads
the summary of changes and signs. At 1280 px and at 390 px wide, with no console error (the `page`
fixture fails the test on any).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.service.test_amendments import ANC_VALUES, _amend_anc, _screen

SLOW = 20_000  # ms: pages that compile the draft and run its test cases, on a machine shared with others
WIDTHS = {"wide": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def amendment(app, client, subject):
    """Screenings under v1 whose decisions a stricter ANC threshold moves, and draft v2 with that threshold."""
    for i, anc in enumerate(ANC_VALUES * 3):
        _screen(client, subject, f"S-{i}", anc=anc)
    _amend_anc(app, client)


@pytest.fixture
def live_server(gunicorn, queue_worker):
    """The replay runs on a job worker, as in production, so the page follows its progress."""
    queue_worker()
    return gunicorn(workers=1, IMPACT_INLINE="false").url


def _fits(page, width: int) -> None:
    """Nothing wider than the window: the page is read without scrolling sideways."""
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width, f"the page is {overflow} px wide in a {width} px window"


@pytest.mark.parametrize("size", list(WIDTHS))
def test_reviewer_reads_replays_opens_downloads_and_signs(page, sign_in, screenshot, amendment, size):
    viewport = WIDTHS[size]
    page.set_viewport_size(viewport)
    sign_in("reviewer")
    page.goto("/admin/")
    page.get_by_role("link", name="Review amendments").last.click()
    expect(page.locator("h2", has_text="Review amendments")).to_be_visible()
    page.get_by_role("link", name="review v2").click()

    # The diff, side by side, in words.
    item = page.locator("[data-key='IN-03b']")
    expect(item).to_contain_text("anc >= 1 x10^9/L")
    expect(item).to_contain_text("anc >= 1.5 x10^9/L")
    expect(item.locator(".eligo-changes")).to_contain_text("stricter")
    _fits(page, viewport["width"])
    screenshot(f"review-diff-{size}")

    # The impact replay, started from the page, its progress shown, then the screenings it moves.
    page.get_by_role("button", name="Run impact replay").click()
    expect(page.locator("[data-impact-progress]")).to_be_visible()
    moved = page.locator("[data-direction='eligible→not_eligible']")
    expect(moved).to_contain_text("eligible → not eligible: 9", timeout=30_000)
    expect(page.locator("[data-impact-progress] .progress-bar")).to_have_text("100%")
    expect(page.locator("[data-impact-status]")).to_contain_text(
        "done, 24 of 24 screenings replayed, 9 changed", timeout=SLOW
    )
    _fits(page, viewport["width"])
    screenshot(f"review-impact-{size}")

    # An affected screening's own result page.
    first = moved.locator("tbody tr").first
    expect(first).to_contain_text("IN-03b")
    subject_id = first.locator("a").inner_text()
    first.locator("a").click()
    expect(page.get_by_text(subject_id).first).to_be_visible()
    screenshot(f"review-screening-{size}")
    page.go_back()

    # The summary of changes, downloaded.
    summary = page.locator("#summary")
    expect(summary).to_contain_text("IN-03b")
    for kind, suffix, expected in (("markdown", "md", "| IN-03b |"), ("csv", "csv", "IN-03b,")):
        with page.expect_download() as download:
            summary.locator(f"[data-download='{kind}']").click()
        path = ARTIFACTS.parent / f"summary-{size}.{suffix}"
        download.value.save_as(path)
        assert download.value.suggested_filename == f"NCT07193667-v1-v2-summary.{suffix}"
        assert expected in path.read_text(encoding="utf-8")

    # The signing page: diff, impact, tests and summary above the password; then the signature.
    page.get_by_role("link", name=re.compile("Sign and publish")).click()
    expect(page.locator("h2", has_text="Sign and publish NCT07193667 version 2")).to_be_visible(timeout=SLOW)
    expect(page.locator("#diff [data-key='IN-03b']")).to_contain_text("stricter")
    expect(page.locator("#impact")).to_contain_text("9 of 24 screenings change decision")
    expect(page.locator("[data-tests='passed']")).to_be_visible()
    expect(page.locator("#summary")).to_contain_text("IN-03b")
    _fits(page, viewport["width"])
    page.fill("#password", "pw-reviewer")
    page.fill("#reason", "Approved after reading the diff and the impact on 24 screenings")
    screenshot(f"review-sign-{size}")
    page.get_by_role("button", name="Sign and publish").click()
    expect(page.get_by_text("NCT07193667 version 2 published")).to_be_visible(timeout=SLOW)
    screenshot(f"review-published-{size}")


def test_a_replay_followed_by_the_page_is_cancelled_from_it(page, sign_in, app, amendment):
    """A run still going when the page opens is followed; Cancel stops it (a run nobody executes stays running)."""
    from service import impact, versions

    with app.app_context():
        run = impact.start("NCT07193667", 1, 2).id  # started, not launched: it stays `running` until cancelled
        draft_id = versions.find_version("NCT07193667", 2).id
    sign_in("reviewer")
    page.goto(f"/admin/review/{draft_id}")
    status = page.locator("[data-impact-status]")
    expect(status).to_contain_text(f"Run #{run}: running, 0 of 24 screenings replayed")
    expect(page.get_by_role("button", name="Run impact replay")).to_be_disabled()
    page.get_by_role("button", name="Cancel").click()
    expect(status).to_contain_text(f"Run #{run}: cancelled")
    expect(page.get_by_role("button", name="Cancel")).to_be_hidden()
    expect(page.get_by_role("button", name="Run impact replay")).to_be_enabled()


def test_a_writer_rebases_a_stale_draft_the_reviewer_was_refused(page, sign_in, screenshot, app, client):
    """Drafts v2 and v3 from v1; v2 (IN-03c) is published; v3 (IN-03a) is refused for signing until rebased."""
    from service import versions
    from service.infra.models import db

    client.post("/api/v1/protocols/NCT07193667/versions", json={"from": 1})
    client.post("/api/v1/protocols/NCT07193667/versions", json={"from": 1})
    with app.app_context():
        for number, code, rule in ((2, "IN-03c", "hgb >= 55 g/L"), (3, "IN-03a", "wbc >= 2.9 x10^9/L")):
            next(c for c in versions.find_version("NCT07193667", number).criteria if c.code == code).rule = rule
        db.session.commit()
        stale_id = versions.find_version("NCT07193667", 3).id
    signed = client.post(
        "/api/v1/protocols/NCT07193667/versions/2/publish", json={"password": "pw-admin", "reason": "approved"}
    )
    assert signed.status_code == 200

    sign_in("reviewer")
    page.goto(f"/admin/sign/?version_id={stale_id}")
    expect(page.locator(".alert-warning")).to_contain_text("rebase the draft onto version 2")
    expect(page.locator("#password")).to_have_count(0)
    screenshot("stale-draft-sign")
    page.context.clear_cookies()  # the reviewer leaves; a writer signs in

    sign_in("writer")
    page.goto("/admin/")
    page.get_by_role("button", name="Rebase onto v2").click()
    expect(page.get_by_text("version 3 is now based on version 2; taken from it: criteria IN-03c.")).to_be_visible()
    screenshot("stale-draft-rebased")
    page.goto(f"/admin/review/{stale_id}")
    expect(page.locator("h2")).to_contain_text("against version 2")
    expect(page.locator("[data-key]")).to_have_count(1)
    expect(page.locator("[data-key='IN-03a']")).to_be_visible()
