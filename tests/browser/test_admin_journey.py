"""The admin's journey in a real browser: a screener account from creation to deactivation.

The admin creates a screener at a site (the password policy's refusals shown on the form), the
screener signs in and screens; the admin rotates the account's API token (shown once) and the old
one stops working; the admin deactivates the account, which can then neither sign in nor use its
token. The tokens are tried with plain HTTP requests from the test: that checks, it is not the
user's path. At 1280 and 390 px, with no console error on either browser.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_page_widths import WIDTHS, fits

PASSWORD = "lantern-orchard-42"


def _api_status(base: str, token: str) -> int:
    """GET the screening log with a bearer token: 200 while the token works, 401 once it does not."""
    request = urllib.request.Request(f"{base}/api/v1/screenings", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _with_selected(page, username: str, action: str) -> None:
    """Flask-Admin's list action on one account: tick its row, choose the action, confirm."""
    page.goto("/admin/users/")
    row = page.locator("tr", has=page.get_by_role("cell", name=username, exact=True))
    row.locator("input.action-checkbox").check()
    page.get_by_role("button", name="With selected").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("link", name=action, exact=True).click()


@pytest.fixture
def screener_page(browser, live_server):
    """A second browser for the screener, failing the test on any console error as the admin's does."""
    context = browser.new_context(base_url=live_server, viewport=WIDTHS["wide"])
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, errors


def _screener_signs_in(page, password: str) -> None:
    page.goto("/login")
    page.fill("#username", "screener9")
    page.fill("#password", password)
    page.click("button[type=submit]")


@pytest.mark.parametrize("size", list(WIDTHS))
def test_admin_creates_rotates_and_deactivates_a_screener(page, screener_page, sign_in, screenshot, live_server, size):
    width = WIDTHS[size]["width"]
    page.set_viewport_size(WIDTHS[size])
    screener_page.set_viewport_size(WIDTHS[size])
    sign_in("admin")

    # Create: the policy's refusals are shown beside their fields, and nothing is saved.
    page.goto("/admin/")
    page.goto("/admin/users/new/")
    page.fill("#username", "screener9")
    page.select_option("#role", "screener")
    page.fill("#password", "short-pw")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("at least 12 characters, not 8")).to_be_visible()
    expect(page.get_by_text("a screener needs a site")).to_be_visible()
    page.fill("#site", "SITE-9")
    page.fill("#password", "my-screener9-pw")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("must not contain the username")).to_be_visible()
    fits(page, width)
    screenshot(f"admin-policy-{size}")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", name="Account created")).to_be_visible()
    first_token = page.locator("[data-token='screener9']").inner_text().strip()
    fits(page, width)
    screenshot(f"admin-created-{size}")
    assert _api_status(live_server, first_token) == 200

    # The screener signs in and screens a subject of their site.
    _screener_signs_in(screener_page, PASSWORD)
    screener_page.wait_for_url("**/")
    screener_page.goto("/screen/NCT07193667/SLE")
    expect(screener_page.locator(".fixed", has_text="SITE-9")).to_be_visible()
    screener_page.fill("#subject_id", "S-ADMIN-1")
    screener_page.get_by_role("button", name="Decide and record").click()
    expect(screener_page.locator(".decision")).to_be_visible()
    screener_page.screenshot(path=str(ARTIFACTS / f"admin-screener-screened-{size}.png"), full_page=True)

    # Rotate the token: the new one is shown once, the old one stops working.
    _with_selected(page, "screener9", "Rotate API token")
    expect(page.get_by_role("heading", name="API token replaced")).to_be_visible()
    new_token = page.locator("[data-token='screener9']").inner_text().strip()
    assert new_token != first_token
    fits(page, width)
    screenshot(f"admin-rotated-{size}")
    assert _api_status(live_server, first_token) == 401
    assert _api_status(live_server, new_token) == 200

    # Deactivate: the open session ends, signing in is refused, the token no longer works.
    _with_selected(page, "screener9", "Deactivate")
    expect(page.get_by_text("screener9 deactivated")).to_be_visible()
    fits(page, width)
    screenshot(f"admin-deactivated-{size}")
    screener_page.goto("/log")
    expect(screener_page).to_have_url(re.compile(r"/login"))
    _screener_signs_in(screener_page, PASSWORD)
    expect(screener_page.get_by_text("Unknown username or wrong password.")).to_be_visible()
    assert _api_status(live_server, new_token) == 401
