"""The screening log's paging and filters, and the attrition funnel's figures, as the pages show them."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from service import screening_pages


@pytest.fixture
def screened(client_as, screening_request):
    """Screen subjects through the API as SITE-1's screener: (cohort, subject id, changes to the eligible subject)."""
    api = client_as("screener")

    def screen(*subjects: tuple[str, str, dict[str, Any]], date: str | None = None) -> list[dict[str, Any]]:
        found = []
        for cohort, subject_id, changes in subjects:
            body = screening_request(cohort, subject_id=subject_id)
            body["inputs"].update(changes)
            body["inputs"] = {k: v for k, v in body["inputs"].items() if v is not None}
            if date:
                body["screening_date"] = date
            response = api.post("/api/v1/screenings", json=body)
            assert response.status_code == 201, response.get_json()
            found.append(response.get_json())
        return found

    return screen


def _rows(html: str) -> list[str]:
    """The subject ids of the log's rows, in order."""
    return re.findall(r"</a></td><td>([^<]+)</td>", html)


def test_the_log_pages_back_and_forth_keeping_its_filters(signed_in, screened, monkeypatch):
    monkeypatch.setattr(screening_pages, "LOG_PAGE_SIZE", 2)
    screened(*[("SLE", f"S-{i}", {}) for i in range(5)], ("ITP", "I-1", {}))
    client = signed_in("screener")
    first = client.get("/log?cohort=SLE").get_data(as_text=True)
    assert _rows(first) == ["S-4", "S-3"] and "Screenings 1–2 of 5." in first and "Page 1 of 3" in first
    assert "Previous page" not in first
    following = re.search(r'<a rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert "cohort=SLE" in following and "page=2" in following
    second = client.get(following).get_data(as_text=True)
    assert _rows(second) == ["S-2", "S-1"] and "Screenings 3–4 of 5." in second
    back = re.search(r'<a rel="prev" href="([^"]+)"', second).group(1).replace("&amp;", "&")
    assert "cohort=SLE" in back and _rows(client.get(back).get_data(as_text=True)) == ["S-4", "S-3"]
    last = client.get("/log?cohort=SLE&page=3").get_data(as_text=True)
    assert _rows(last) == ["S-0"] and "Next page" not in last


@pytest.mark.parametrize(
    ("query", "bad", "message", "rows"),
    [
        (
            "from=2026-13-01&cohort=SLE&decision=eligible",
            "from",
            "'2026-13-01': expected a date as YYYY-MM-DD",
            ["S-1"],
        ),
        (
            "decision=maybe&cohort=SLE",
            "decision",
            "'maybe': expected one of eligible, not_eligible, incomplete",
            ["S-1", "S-2"],
        ),
        ("cohort=LUPUS&decision=eligible", "cohort", "'LUPUS': expected one of SLE, SSc, IIM, ITP", ["I-1", "S-1"]),
        ("protocol=NCT0&cohort=ITP", "protocol", "'NCT0': expected one of NCT07193667", ["I-1"]),
        ("version=two&decision=not_eligible", "version", "'two': expected a version number", ["S-2"]),
        (
            "from=2000-01-05&to=2000-01-01&cohort=ITP",
            "to",
            "'2000-01-01': expected a date on or after 2000-01-05",
            ["I-1"],
        ),
        ("page=x&cohort=ITP", "page", "'x': expected a page number from 1", ["I-1"]),
    ],
)
def test_a_bad_filter_is_named_inline_and_the_others_stay_applied(signed_in, screened, query, bad, message, rows):
    screened(("SLE", "S-1", {}), ("ITP", "I-1", {}), ("SLE", "S-2", {"anc": 0.5}))
    response = signed_in("screener").get(f"/log?{query}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    shown = re.search(rf'id="filter-{bad}-error">([^<]*)<', html).group(1).replace("&#39;", "'")
    assert shown == f"{message}; not applied"
    assert sorted(_rows(html)) == rows
    if bad != "page":
        assert "1 filter could not be used and is marked below; the others are applied." in html
        assert f'aria-invalid="true" aria-describedby="filter-{bad}-error"' in html


def test_an_unknown_cohort_keeps_the_decision_and_date_filters(signed_in, screened, screening_request):
    day = dt.date.fromisoformat(screening_request("SLE")["screening_date"])
    screened(("SLE", "S-1", {}), ("ITP", "I-1", {}), ("SLE", "S-2", {"anc": 0.5}))
    screened(("SLE", "S-3", {}), date=(day + dt.timedelta(days=1)).isoformat())
    html = signed_in("screener").get(f"/log?cohort=LUPUS&decision=eligible&to={day}").get_data(as_text=True)
    assert 'id="filter-cohort-error">&#39;LUPUS&#39;' in html
    assert sorted(_rows(html)) == ["I-1", "S-1"]  # eligible, screened by `day`: S-2 failed, S-3 came later
    assert f'href="/api/v1/screenings.csv?decision=eligible&amp;to={day}"' in html  # the export: what is applied
