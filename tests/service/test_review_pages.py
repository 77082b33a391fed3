"""The reviewer's pages in the admin: the diff side by side, the impact replay, the summary, the signing page."""

from __future__ import annotations

import re

import pytest

from service import versions
from tests.service.test_amendments import _amend_anc, log  # noqa: F401  (a fixture)

SEED = "/api/v1/protocols/NCT07193667"


@pytest.fixture
def amendment(app, client):
    """Draft v2 of the seed with a stricter ANC threshold (IN-03b), and its id."""
    _amend_anc(app, client)
    with app.app_context():
        return versions.find_version("NCT07193667", 2).id


def _csrf(page: str) -> str:
    return re.search(r'data-csrf="([^"]+)"', page).group(1)


def test_the_review_page_shows_the_diff_side_by_side_in_words(signed_in, amendment):
    page = signed_in("reviewer").get(f"/admin/review/{amendment}").get_data(as_text=True)
    assert "against version 1" in page
    item = page[page.index('data-key="IN-03b"') :]
    item = item[: item.index("</ul>")]
    assert "Version 1" in item and "Version 2" in item
    assert "anc &gt;= 1 x10^9/L" in item and "anc &gt;= 1.5 x10^9/L" in item
    assert "stricter" in item
    # Only the rule changed: marked on both sides, the text and kind are not.
    assert re.findall(r"<dt class=\"small\">(\w+) <span [^>]*data-field-changed", item) == ["rule", "rule"]
    assert "Not run yet." in page and "data-impact-start" in page


def test_every_review_page_is_reached_by_links_from_the_admin(signed_in, amendment):
    reviewer = signed_in("reviewer")
    index = reviewer.get("/admin/").get_data(as_text=True)
    assert "/admin/review/" in index and f"/admin/review/{amendment}" in index
    assert f"/admin/sign/?version_id={amendment}" in index
    listing = reviewer.get("/admin/review/").get_data(as_text=True)
    assert f"/admin/review/{amendment}" in listing
    page = reviewer.get(f"/admin/review/{amendment}").get_data(as_text=True)
    assert f"/admin/sign/?version_id={amendment}" in page and "/admin/review/1/summary.md" not in page
    assert reviewer.get(f"/admin/review/{amendment}?from=x").status_code == 400
    assert reviewer.get("/admin/review/999").status_code == 404


def test_a_writer_reads_the_review_but_cannot_start_the_replay(signed_in, amendment):
    page = signed_in("writer").get(f"/admin/review/{amendment}").get_data(as_text=True)
    assert 'data-key="IN-03b"' in page and "data-impact-start" not in page
    assert signed_in("screener").get(f"/admin/review/{amendment}").status_code == 403


@pytest.mark.usefixtures("log")
def test_the_replay_started_as_the_page_does_lists_changed_screenings_by_direction(signed_in, amendment):
    reviewer = signed_in("reviewer")
    page = reviewer.get(f"/admin/review/{amendment}").get_data(as_text=True)
    started = reviewer.post(f"{SEED}/impact", json={"from": 1, "to": 2}, headers={"X-CSRFToken": _csrf(page)})
    assert started.status_code == 201, started.get_json()
    page = reviewer.get(f"/admin/review/{amendment}").get_data(as_text=True)
    assert "4 of 10 screenings change decision" in page
    group = page[page.index('data-direction="eligible→not_eligible"') :]
    group = group[: group.index("</table>")]
    assert "eligible → not eligible: 3" in group
    links = re.findall(r'<a href="(/screenings/\d+)">(S-\d)</a></td><td>SITE-1</td><td>IN-03b</td>', group)
    assert sorted(subject for _, subject in links) == ["S-1", "S-2", "S-3"]
    assert reviewer.get(links[0][0]).status_code == 200  # the screening's own result page
    assert 'data-direction="incomplete→not_eligible"' in page


def test_the_replay_needs_the_csrf_header_from_a_browser_session(signed_in, amendment):
    response = signed_in("reviewer").post(f"{SEED}/impact", json={"from": 1, "to": 2})
    assert response.status_code in (400, 403)


def test_the_summary_downloads_as_markdown_and_csv(signed_in, amendment):
    reviewer = signed_in("reviewer")
    markdown = reviewer.get(f"/admin/review/{amendment}/summary.md")
    assert markdown.status_code == 200
    assert "attachment; filename=NCT07193667-v1-v2-summary.md" in markdown.headers["Content-Disposition"]
    assert "| IN-03b |" in markdown.get_data(as_text=True)
    table = reviewer.get(f"/admin/review/{amendment}/summary.csv")
    assert table.mimetype == "text/csv"
    lines = table.get_data(as_text=True).splitlines()
    assert lines[0].startswith("criterion,change") and lines[1].startswith("IN-03b,")


def test_the_signing_page_shows_diff_impact_tests_and_summary_above_the_password(signed_in, amendment):
    page = signed_in("reviewer").get(f"/admin/sign/?version_id={amendment}").get_data(as_text=True)
    positions = [page.index(marker) for marker in ('id="diff"', 'id="impact"', 'id="summary"', 'id="tests"')]
    assert all(p < page.index('name="password"') for p in positions)
    assert 'data-tests="passed"' in page and 'data-key="IN-03b"' in page


def test_the_signing_page_lists_failing_test_cases(app, signed_in, client):
    _amend_anc(app, client, threshold="2.5")  # the seed's eligible subjects have ANC below 2.5
    with app.app_context():
        draft_id = versions.find_version("NCT07193667", 2).id
    page = signed_in("reviewer").get(f"/admin/sign/?version_id={draft_id}").get_data(as_text=True)
    assert 'data-tests="failed"' in page and "SLE subject meeting every criterion" in page
