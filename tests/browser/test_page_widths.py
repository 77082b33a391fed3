"""Every admin and reviewer page at 390 px (a phone) and 1280 px: no sideways scroll of the page, no console error.

Tables may scroll inside their own container; the page itself must fit the window. Each page is
visited as an admin (who may see them all) with a stale draft present, so the rebase box shows,
and photographed into test-artifacts/screenshots/.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from service import versions
from service.infra.models import Criterion, TestCase, User, Variable, db
from tests.service.test_stale_drafts import two_drafts  # noqa: F401  (a fixture: v2 published, v3 stale)

WIDTHS = {"phone": {"width": 390, "height": 844}, "wide": {"width": 1280, "height": 900}}
SLOW = 30_000  # ms: pages that compile a draft and run its test cases, on a shared machine

PAGES = {
    "index": "/admin/",
    "protocols": "/admin/protocols/",
    "versions": "/admin/versions/",
    "version-details": "/admin/versions/details/?id={v1}",
    "criteria": "/admin/criteria/?version_number=3",
    "criterion-edit": "/admin/criteria/edit/?id={criterion}",
    "criterion-new": "/admin/criteria/new/",
    "dictionary": "/admin/variables/?version_number=3",
    "variable-edit": "/admin/variables/edit/?id={variable}",
    "value-sets": "/admin/valuesets/",
    "value-set-new": "/admin/valuesets/new/",
    "cohorts": "/admin/cohorts/",
    "cohort-new": "/admin/cohorts/new/",
    "test-cases": "/admin/testcases/",
    "test-case-edit": "/admin/testcases/edit/?id={test_case}",
    "audit": "/admin/audit/",
    "users": "/admin/users/",
    "user-new": "/admin/users/new/",
    "user-edit": "/admin/users/edit/?id={user}",
    "review-index": "/admin/review/",
    "review": "/admin/review/{v3}",
    "sign": "/admin/sign/?version_id={v3}",
    "try-pick": "/admin/tryit/",
    "try": "/admin/tryit/?version_id={v3}",
}


@pytest.fixture
def ids(app, two_drafts) -> dict[str, int]:  # noqa: F811
    with app.app_context():
        v1, v3 = versions.find_version("NCT07193667", 1), versions.find_version("NCT07193667", 3)

        def first(model, **where) -> int:
            return db.session.execute(select(model.id).filter_by(**where).order_by(model.id)).scalars().first()

        return {
            "v1": v1.id,
            "v3": v3.id,
            "criterion": first(Criterion, version_id=v3.id, code="IN-03b"),
            "variable": first(Variable, version_id=v3.id, name="anc"),
            "test_case": first(TestCase, version_id=v3.id),
            "user": first(User, username="screener"),
        }


def fits(page, width: int) -> None:
    """The page is read without scrolling sideways (tables scroll in their own container)."""
    scroll = page.evaluate("document.documentElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    assert inner == width
    assert scroll <= inner + 1, f"{page.url}: the page is {scroll} px wide in a {inner} px window"


@pytest.mark.parametrize("size", list(WIDTHS))
def test_every_admin_and_reviewer_page_fits(page, sign_in, screenshot, ids, size):
    page.set_viewport_size(WIDTHS[size])
    page.set_default_timeout(SLOW)
    sign_in("admin")
    for name, url in PAGES.items():
        response = page.goto(url.format(**ids))
        assert response is not None and response.status == 200, f"{name}: {url} answered {response.status}"
        page.wait_for_load_state("networkidle")
        fits(page, WIDTHS[size]["width"])
        screenshot(f"width-{name}-{size}")

    # Rebasing the stale draft, from the box on the index page.
    page.goto("/admin/")
    page.get_by_role("button", name="Rebase onto v2").click()
    expect(page.get_by_text("is now based on version 2")).to_be_visible()
    fits(page, WIDTHS[size]["width"])
    screenshot(f"width-rebased-{size}")
