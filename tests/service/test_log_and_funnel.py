"""The screening log's paging and filters, and the attrition funnel's figures, as the pages show them."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest


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


def test_the_log_pages_back_and_forth_keeping_its_filters(app, signed_in, screened):
    app.config["LOG_PAGE_SIZE"] = 2
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
            "'maybe': expected one of 'eligible', 'not_eligible' or 'incomplete'",
            ["S-1", "S-2"],
        ),
        ("cohort=LUPUS&decision=eligible", "cohort", "'LUPUS': expected one of SLE, SSc, IIM, ITP", ["I-1", "S-1"]),
        ("protocol=NCT0&cohort=ITP", "protocol", "'NCT0': expected one of NCT07193667", ["I-1"]),
        ("version=two&decision=not_eligible", "version", "'two': expected a whole number", ["S-2"]),
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


@pytest.fixture
def five_sle_subjects_and_one_itp(screened, screening_request):
    """A small screening log whose funnel is computed by hand in the tests below.

    SLE: A eligible; B fails IN-03a (WBC) and EX-01 (allergy); C fails EX-01 only; D lacks IN-03j's answer
    (incomplete); E failed IN-02 (CD19) and was re-screened eligible. ITP: F eligible. SLE: G fails IN-03a,
    screened a day later than the others."""
    day = dt.date.fromisoformat(screening_request("SLE")["screening_date"])
    screened(
        ("SLE", "A", {}),
        ("SLE", "B", {"wbc": 2, "severe_drug_allergy": True}),
        ("SLE", "C", {"severe_drug_allergy": True}),
        ("SLE", "D", {"hemodynamically_stable": None}),
        ("SLE", "E", {"cd19_positive": False}),
        ("SLE", "E", {}),
    )
    screened(("ITP", "F", {}), date=dt.date.fromisoformat(screening_request("ITP")["screening_date"]).isoformat())
    screened(("SLE", "G", {"wbc": 2}), date=(day + dt.timedelta(days=1)).isoformat())
    return day


def _steps(data) -> dict[str, tuple[int, int, int]]:
    return {step.code: (step.remaining, step.excluded, step.unknown) for step in data.steps}


def test_the_funnel_counts_each_subject_once_at_the_first_criterion_that_excludes_them(
    app, five_sle_subjects_and_one_itp
):
    from service.attrition import funnel
    from service.versions import find_version

    day = five_sle_subjects_and_one_itp
    with app.app_context():
        version = find_version("NCT07193667")
        sle = funnel(version, cohort="SLE", date_to=day)
        assert (sle.screened, sle.eligible, sle.not_eligible, sle.incomplete) == (5, 2, 2, 1)
        steps = _steps(sle)
        assert [s.code for s in sle.steps][:3] == ["IN-01", "IN-02", "IN-03a"]  # protocol order
        assert not any(code.startswith(("IN-ITP", "IN-SSC", "IN-IIM")) for code in steps)  # SLE's criteria only
        assert steps["IN-02"] == (5, 0, 0)  # E counts at their latest screening
        assert steps["IN-03a"] == (4, 1, 0)  # B leaves here ...
        assert steps["IN-03j"] == (4, 0, 1)  # D stays, undecided
        assert steps["EX-01"] == (3, 1, 0)  # ... and is not counted again: only C leaves here
        assert steps["EX-13"] == (3, 0, 0) == (sle.eligible + sle.incomplete, 0, 0)
        assert sle.share(4) == 80.0
        every = funnel(version)  # all cohorts, every date: F and G too
        assert (every.screened, every.eligible, every.not_eligible) == (7, 3, 3)
        assert _steps(every)["IN-03a"] == (5, 2, 0)
        assert _steps(every)["IN-SLE-1"] == (5, 0, 0)  # F is ITP: not applicable, stays
        assert _steps(funnel(version, cohort="SLE", date_from=day + dt.timedelta(days=1)))["IN-03a"] == (0, 1, 0)


def test_the_attrition_page_shows_the_funnel_by_cohort_and_period_as_a_table(signed_in, five_sle_subjects_and_one_itp):
    day = five_sle_subjects_and_one_itp
    html = signed_in("screener").get(f"/protocols/NCT07193667/attrition?cohort=SLE&to={day}").get_data(as_text=True)
    assert (
        f"SLE subjects, screened up to {day}:" in html
        and "5 screened, 2 eligible, 2 not eligible, 1 incomplete" in html
    )
    row = re.search(r"<strong>IN-03a</strong>.*?</tr>", html, re.S).group(0)
    assert re.search(r"<td>4</td><td>80%</td>\s*<td>−1</td><td>0</td>", row), row
    assert '<svg class="funnel-bar"' in row and 'aria-hidden="true"' in row
    assert f'href="/protocols/NCT07193667/attrition.svg?cohort=SLE&amp;to={day}"' in html
    svg = signed_in("screener").get(f"/protocols/NCT07193667/attrition.svg?cohort=SLE&to={day}")
    assert svg.content_type == "image/svg+xml" and "4 (80%, −1)" in svg.get_data(as_text=True)


def test_a_bad_cohort_or_period_on_the_attrition_page_is_named_and_the_rest_applied(
    signed_in, five_sle_subjects_and_one_itp
):
    client = signed_in("screener")
    html = client.get("/protocols/NCT07193667/attrition?cohort=LUPUS&from=2026-02-30").get_data(as_text=True)
    assert "&#39;LUPUS&#39;: expected one of SLE, SSc, IIM, ITP; not applied" in html
    assert "&#39;2026-02-30&#39;: expected a date as YYYY-MM-DD; not applied" in html
    assert "Subjects of all cohorts, all screening dates:" in html and "7 screened" in html
    svg = client.get("/protocols/NCT07193667/attrition.svg?cohort=LUPUS")
    assert svg.status_code == 400 and "LUPUS" in svg.get_data(as_text=True)
