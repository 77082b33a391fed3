"""Histories: list variables of coded, dated entries, value sets, and the rules that count matches."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rules
from rules import lists
from rules.errors import ProtocolError, RuleErrors, SubjectInputErrors
from rules.protocol import from_dict, loads

SCREENING = dt.date(2026, 11, 20)

PROTOCOL: dict[str, Any] = {
    "protocol": "TEST-LISTS",
    "title": "Histories",
    "version": "1",
    "value_sets": [
        {"name": "sglt2", "label": "SGLT2 inhibitors", "system": "ATC", "codes": ["A10BK*"], "half_life": "13 h"},
        {"name": "metformin", "label": "Metformin", "system": "ATC", "codes": ["A10BA02"]},
        {"name": "t1dm", "label": "Type 1 diabetes", "system": "ICD-10-CM", "codes": ["E10*", "O24.01"]},
    ],
    "variables": [
        {"name": "medications", "label": "Medications", "type": "list", "system": "ATC"},
        {"name": "diagnoses", "label": "Diagnoses", "type": "list", "system": "ICD-10-CM"},
        {"name": "diagnosis_date", "label": "Diagnosis date", "type": "date"},
    ],
    "criteria": [
        {
            "code": "EX-SGLT2",
            "kind": "exclusion",
            "text": "An SGLT2 inhibitor within 8 weeks before screening",
            "rule": "any medications in sglt2 within 8 weeks before screening",
        },
        {"code": "EX-T1DM", "kind": "exclusion", "text": "Type 1 diabetes", "rule": "any diagnoses in t1dm"},
        {
            "code": "IN-MET",
            "kind": "inclusion",
            "text": "On metformin for 3 months before diagnosis",
            "rule": "count of medications in metformin within 3 months before diagnosis_date >= 1",
        },
        {
            "code": "EX-WASHOUT",
            "kind": "exclusion",
            "text": "Last SGLT2 dose within 5 half-lives",
            "rule": "last dose of medications in sglt2 within 5 half-lives",
        },
        {
            "code": "IN-NONE",
            "kind": "inclusion",
            "text": "No more than one SGLT2 inhibitor ever",
            "rule": "count of medications in sglt2 <= 1",
        },
    ],
}


def protocol(**changes: Any) -> rules.ProtocolDef:
    return from_dict({**PROTOCOL, **changes})


@pytest.fixture(scope="module")
def compiled() -> rules.CompiledProtocol:
    return rules.compile_protocol(protocol())


def day(offset: int) -> str:
    return (SCREENING + dt.timedelta(days=offset)).isoformat()


def subject(**values: Any) -> dict[str, Any]:
    return {"screening_date": SCREENING.isoformat(), **values}


def outcome(compiled: rules.CompiledProtocol, code: str, data: dict[str, Any]) -> str:
    decision = rules.decide(compiled, data)
    reference = rules.decide_reference(compiled, data)
    assert [(c.outcome, c.sentence) for c in reference.criteria] == [(c.outcome, c.sentence) for c in decision.criteria]
    return next(c for c in decision.criteria if c.code == code).outcome


def criterion(decision: rules.Decision, code: str):
    return next(c for c in decision.criteria if c.code == code)


DAPA = {"code": "A10BK01", "label": "dapagliflozin"}


# -- three values --------------------------------------------------------------------------------


def test_an_absent_list_is_unknown_and_an_empty_list_is_none(compiled):
    assert outcome(compiled, "EX-T1DM", subject()) == "unknown"
    assert outcome(compiled, "EX-T1DM", subject(diagnoses=[])) == "pass"
    assert outcome(compiled, "EX-SGLT2", subject(medications=[])) == "pass"
    assert outcome(compiled, "IN-NONE", subject(medications=[])) == "pass"


def test_a_prefix_takes_the_hierarchy_and_icd_codes_compare_without_their_dot(compiled):
    assert outcome(compiled, "EX-T1DM", subject(diagnoses=[{"code": "E10.65"}])) == "fail"
    assert outcome(compiled, "EX-T1DM", subject(diagnoses=[{"code": "O2401"}])) == "fail"
    assert outcome(compiled, "EX-T1DM", subject(diagnoses=[{"code": "O24.011"}])) == "pass"  # exact, not a prefix
    assert outcome(compiled, "EX-T1DM", subject(diagnoses=[{"code": "E11.9"}])) == "pass"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (-30, None, "fail"),  # ongoing
        (-200, -50, "fail"),  # ended inside the 8 weeks (56 days)
        (-200, -56, "fail"),  # ended on the window's first day: inclusive
        (-200, -57, "pass"),  # ended the day before the window
        (None, -10, "fail"),  # started before it ended, so before screening
        (None, -100, "pass"),  # ended before the window
        (None, None, "unknown"),  # no dates: may have been taken in the window
        (None, 10, "unknown"),
    ],
)
def test_a_window_holds_entries_whose_time_overlaps_it(compiled, start, end, expected):
    entry = {**DAPA, "start": None if start is None else day(start), "end": None if end is None else day(end)}
    assert outcome(compiled, "EX-SGLT2", subject(medications=[entry])) == expected


def test_an_entry_starting_after_the_screening_date_is_refused_where_a_rule_looks_back(compiled):
    """As a plain date is: a start after screening is a typo or a plan, never a time inside the window."""
    with pytest.raises(rules.SubjectInputErrors) as refused:
        rules.decide(compiled, subject(medications=[{**DAPA, "start": day(-30)}, {**DAPA, "start": day(5)}]))
    assert [e.field for e in refused.value.errors] == ["medications[1].start"]


def test_a_definite_match_decides_whatever_other_entries_lack(compiled):
    entries = [{**DAPA}, {**DAPA, "start": day(-10)}]
    assert outcome(compiled, "EX-SGLT2", subject(medications=entries)) == "fail"


def test_a_window_counts_back_from_a_date_variable_and_is_unknown_without_it(compiled):
    metformin = {"code": "A10BA02", "start": "2026-01-01", "end": "2026-05-01"}
    assert outcome(compiled, "IN-MET", subject(medications=[metformin], diagnosis_date="2026-06-15")) == "pass"
    assert outcome(compiled, "IN-MET", subject(medications=[metformin], diagnosis_date="2026-09-01")) == "fail"
    decision = rules.decide(compiled, subject(medications=[metformin]))
    assert criterion(decision, "IN-MET").outcome == "unknown"
    assert criterion(decision, "IN-MET").missing == ["diagnosis_date"]


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(0, "fail"), (-2, "fail"), (-3, "pass"), (-30, "pass")],  # 5 x 13 h = 2.7 days
)
def test_a_washout_counts_half_lives_from_the_last_dose(compiled, offset, expected):
    entry = {**DAPA, "start": day(-100), "end": day(offset)}
    assert outcome(compiled, "EX-WASHOUT", subject(medications=[entry])) == expected


@pytest.mark.parametrize(
    ("rule", "count", "expected"),
    [
        ("count of medications in sglt2 >= 2", 2, True),
        ("count of medications in sglt2 >= 2", 1, False),
        ("count of medications in sglt2 > 2", 2, False),
        ("count of medications in sglt2 == 2", 2, True),
        ("count of medications in sglt2 = 3", 2, False),
        ("count of medications in sglt2 != 2", 3, True),
        ("count of medications in sglt2 < 1", 0, True),
        ("count of medications in sglt2 <= 1", 2, False),
        ("no medications in sglt2", 0, True),
        ("no medications in sglt2", 1, False),
    ],
)
def test_counts_compare_like_numbers(rule, count, expected):
    criteria = [{"code": "IN", "kind": "inclusion", "text": "t", "rule": rule}]
    compiled = rules.compile_protocol(protocol(criteria=criteria))
    entries = [{"code": f"A10BK0{i + 1}", "start": day(-10 * i)} for i in range(count)]
    assert outcome(compiled, "IN", subject(medications=entries)) == ("pass" if expected else "fail")


# -- input ---------------------------------------------------------------------------------------


def test_entries_are_normalised_and_dates_become_day_numbers(compiled):
    normalized = compiled.dictionary.normalize(
        subject(medications=[{"code": " a10bk01 ", "start": "2026-10-01", "value": "10", "unit": "mg"}])
    )
    (entry,) = normalized.values["medications"]
    assert entry == {
        "code": "a10bk01",
        "system": "ATC",
        "start": dt.date(2026, 10, 1).toordinal(),
        "end": None,
        "value": 10.0,
        "unit": "mg",
    }


@pytest.mark.parametrize(
    ("medications", "field", "expected"),
    [
        ("metformin", "medications", "a list of entries"),
        ([{"code": "A10BK01"}, "x"], "medications[1]", "an entry"),
        ([{"code": "A10BK01"}, {}, {"code": "A10BK01", "start": "01/10/2026"}], "medications[2].start", "YYYY-MM-DD"),
        ([{"code": "A10BK01", "start": "2026-10-02", "end": "2026-10-01"}], "medications[0].end", "on or after"),
        ([{"code": "E11.9"}], "medications[0].code", "ATC code"),
        ([{"code": "A10BK*"}], "medications[0].code", "ATC code"),
        ([{"code": "A10BK01", "system": "ICD-9"}], "medications[0].system", "ICD-10-CM"),
        ([{"code": "A10BK01", "dose": 10}], "medications[0].dose", "one of code"),
        ([{"code": "A10BK01", "value": "ten"}], "medications[0].value", "a number"),
    ],
)
def test_a_bad_entry_is_named_by_its_position(compiled, medications, field, expected):
    with pytest.raises(SubjectInputErrors) as raised:
        compiled.dictionary.normalize(subject(medications=medications))
    errors = {e.field: e.expected for e in raised.value.errors}
    assert field in errors
    assert expected in errors[field]


def test_every_bad_entry_is_reported_at_once(compiled):
    bad = [{"code": "A10BK01", "start": "x"}, {"code": "A10BK01", "end": "y"}]
    with pytest.raises(SubjectInputErrors) as raised:
        compiled.dictionary.normalize(subject(medications=bad))
    assert [e.field for e in raised.value.errors] == ["medications[0].start", "medications[1].end"]


def test_a_list_without_a_default_system_needs_it_per_entry():
    variables = [{"name": "medications", "label": "Medications", "type": "list"}]
    criteria = [{"code": "EX", "kind": "exclusion", "text": "t", "rule": "any medications in sglt2"}]
    compiled = rules.compile_protocol(protocol(variables=variables, criteria=criteria))
    with pytest.raises(SubjectInputErrors, match=r"medications\[0\]\.system"):
        compiled.dictionary.normalize(subject(medications=[{"code": "A10BK01"}]))
    entries = [{"code": "A10BK01", "system": "atc"}, {"code": "E10.9", "system": "ICD-10-CM"}]
    assert outcome(compiled, "EX", subject(medications=entries)) == "fail"
    assert outcome(compiled, "EX", subject(medications=entries[1:])) == "pass"


# -- rules refused ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message", "column"),
    [
        ("any medications in sglt", "unknown value set `sglt`", 20),
        ("any diagnosis_date in sglt2", "`diagnosis_date` is a date, here a list is needed", 5),
        ("medications >= 2", "`medications` is a list", 1),
        ("medications", "`medications` is a list, not yes/no", 1),
        ("any diagnoses in sglt2", "`sglt2` holds ATC codes, but `diagnoses` entries are ICD-10-CM", 18),
        ("last dose of medications in metformin within 5 half-lives", "has no `half_life`", 29),
        ("count of medications in sglt2 >= 1.5", "a count is compared with a whole number", 1),
        ("any medications in sglt2 within 8 mg before screening", "a window needs days", 33),
        ("any medications in sglt2 within 8 weeks before medications", "`medications` is a list", 48),
    ],
)
def test_a_wrong_list_rule_is_refused_with_its_position(rule, message, column):
    criteria = [{"code": "EX", "kind": "exclusion", "text": "t", "rule": rule}]
    with pytest.raises(RuleErrors) as raised:
        rules.compile_protocol(protocol(criteria=criteria))
    error = next(e for e in raised.value.errors if message in e.message)
    assert error.position.column == column
    assert "^" in error.context()


def test_an_unknown_value_set_suggests_the_nearest():
    criteria = [{"code": "EX", "kind": "exclusion", "text": "t", "rule": "any medications in sglt"}]
    with pytest.raises(RuleErrors) as raised:
        rules.compile_protocol(protocol(criteria=criteria))
    assert raised.value.errors[0].suggestion == "sglt2"


@pytest.mark.parametrize(
    ("value_set", "problem"),
    [
        ({"name": "x", "system": "ICD-9", "codes": ["250"]}, "unknown code system `ICD-9`"),
        ({"name": "x", "system": "ATC", "codes": ["E11.9"]}, "`E11.9` is not a ATC code"),
        ({"name": "x", "system": "ATC", "codes": ["A10*BK"]}, "a prefix is written with one `*` at the end"),
        ({"name": "x", "system": "ATC", "codes": ["A10BK*"], "half_life": "13 mg"}, "must be a duration"),
        ({"name": "X y", "system": "ATC", "codes": ["A10BK*"]}, "names are lower case"),
        ({"name": "x", "system": "LOINC", "codes": ["4548-4"], "half_life": "0 h"}, "above zero"),
    ],
)
def test_a_bad_value_set_is_refused_in_words(value_set, problem):
    with pytest.raises(ProtocolError) as raised:
        rules.compile_protocol(protocol(value_sets=[value_set], criteria=[]))
    assert any(problem in p for p in raised.value.problems), raised.value.problems


def test_a_value_set_without_codes_is_refused_by_the_file():
    with pytest.raises(ProtocolError, match="needs at least one code"):
        protocol(value_sets=[{"name": "x", "system": "ATC", "codes": []}])


def test_codes_and_keywords_named_like_the_new_words_still_parse():
    variables = [{"name": "answer", "label": "Answer", "type": "code", "codes": ["yes", "no"]}]
    criteria = [{"code": "IN", "kind": "inclusion", "text": "t", "rule": "answer is no"}]
    compiled = rules.compile_protocol(protocol(variables=variables, criteria=criteria))
    assert outcome(compiled, "IN", subject(answer="no")) == "pass"


# -- file and hash -------------------------------------------------------------------------------


def test_value_sets_round_trip_through_the_file_and_change_the_hash():
    original = protocol()
    again = loads(rules.dump_protocol(original))
    assert again == original
    assert again.content_hash == original.content_hash
    edited = protocol(value_sets=[{**PROTOCOL["value_sets"][0], "codes": ["A10BK01"]}, *PROTOCOL["value_sets"][1:]])
    assert edited.content_hash != original.content_hash


def test_a_protocol_without_value_sets_hashes_as_before(seed):
    assert "value_sets" not in seed.canonical()
    assert "value_sets" not in rules.dump_protocol(seed)


# -- explanations --------------------------------------------------------------------------------


def test_the_explanation_names_the_entries_that_matched(compiled):
    medications = [{**DAPA, "start": "2026-10-01"}, {"code": "A10BA02", "start": "2026-01-01"}]
    decision = rules.decide(compiled, subject(medications=medications, diagnoses=[]))
    sglt2 = criterion(decision, "EX-SGLT2")
    assert sglt2.sentence == (
        "Medications in SGLT2 inhibitors within 8 weeks before screening:"
        " dapagliflozin (A10BK01), started 2026-10-01, ongoing"
    )
    assert sglt2.condition["matched"] == ["dapagliflozin (A10BK01), started 2026-10-01, ongoing"]
    assert criterion(decision, "EX-T1DM").sentence == "no diagnoses in Type 1 diabetes"


def test_the_explanation_names_the_entry_whose_date_is_missing(compiled):
    decision = rules.decide(compiled, subject(medications=[{**DAPA}, {"code": "A10BA02"}]))
    sglt2 = criterion(decision, "EX-SGLT2")
    assert sglt2.outcome == "unknown"
    assert sglt2.missing == ["medications[0].start"]
    assert sglt2.condition["undecided"] == ["dapagliflozin (A10BK01)"]


# -- engine against reference --------------------------------------------------------------------

CODES = ["A10BK01", "A10BK03", "A10BA02", "A10BX09", "E10.9", "E11.9", "O24.01"]


@st.composite
def entry(draw) -> dict[str, Any]:
    code = draw(st.sampled_from(CODES))
    system = "ICD-10-CM" if code[0] in "EO" else "ATC"
    start = draw(st.none() | st.integers(-400, 0))  # a start after screening is refused as input
    end = draw(st.none() | st.integers(-400, 20))
    if start is not None and end is not None and end < start:
        start, end = end, start
    return {
        "code": code,
        "system": system,
        "start": None if start is None else day(start),
        "end": None if end is None else day(end),
    }


GENERAL = {
    **PROTOCOL,
    "variables": [
        {"name": "medications", "label": "Medications", "type": "list"},
        {"name": "diagnosis_date", "label": "Diagnosis date", "type": "date"},
    ],
    "criteria": [
        {
            "code": "A",
            "kind": "exclusion",
            "text": "t",
            "rule": "any medications in sglt2 within 8 weeks before screening",
        },
        {
            "code": "B",
            "kind": "inclusion",
            "text": "t",
            "rule": "no medications in t1dm or count of medications in sglt2 >= 2",
        },
        {
            "code": "C",
            "kind": "inclusion",
            "text": "t",
            "rule": "count of medications in metformin within 3 months before diagnosis_date == 1",
        },
        {
            "code": "D",
            "kind": "exclusion",
            "text": "t",
            "rule": "last dose of medications in sglt2 within 5 half-lives",
        },
        {
            "code": "E",
            "kind": "inclusion",
            "text": "t",
            "rule": "at least 2 of (no medications in sglt2, any medications in t1dm within 1 years before screening,"
            " count of medications in sglt2 within 100 days before screening < 3)",
        },
    ],
}
GENERAL_COMPILED = rules.compile_protocol(from_dict(GENERAL))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    medications=st.none() | st.lists(entry(), max_size=6),
    diagnosis=st.none() | st.integers(-200, 0),
)
def test_the_engine_decides_lists_as_the_reference_does(medications, diagnosis):
    data = subject()
    if medications is not None:
        data["medications"] = medications
    if diagnosis is not None:
        data["diagnosis_date"] = day(diagnosis)
    engine = rules.outcomes(GENERAL_COMPILED, data)
    reference = rules.decide_reference(GENERAL_COMPILED, data)
    assert engine[1] == {c.code: c.outcome for c in reference.criteria}
    assert engine[0] == reference.decision
    assert rules.decide(GENERAL_COMPILED, data).decision == engine[0]


@settings(max_examples=100, deadline=None)
@given(medications=st.lists(entry(), max_size=6))
def test_with_every_date_known_a_count_is_the_plain_count(medications):
    """Dated entries leave nothing open: the count is what a screener would count by hand."""
    dated = [{**e, "start": e["start"] or min(e["end"] or day(-400), day(-400))} for e in medications]
    expected = sum(
        1
        for e in dated
        if e["code"].startswith("A10BK") and e["start"] <= day(0) and (e["end"] is None or e["end"] >= day(-56))
    )
    decision = rules.decide(GENERAL_COMPILED, subject(medications=dated))
    assert criterion(decision, "A").outcome == ("fail" if expected else "pass")
    assert criterion(decision, "A").condition["matched"].__len__() == expected


def test_a_value_set_matches_its_system_only():
    checked = lists.check_value_sets(from_dict(PROTOCOL).value_sets, [])
    assert checked["sglt2"].matches("ATC", "a10bk01")
    assert not checked["sglt2"].matches("RxNorm", "A10BK01")


# -- the semantic diff ---------------------------------------------------------------------------


def test_a_value_set_edited_shows_in_the_diff():
    from rules.diff import diff

    edited = dict(PROTOCOL["value_sets"][0], codes=["A10BK01", "A10BK03"], half_life="12 h")
    after = protocol(value_sets=[edited, *PROTOCOL["value_sets"][1:4]], version="2")
    result = diff(protocol(), after)
    assert not result.empty
    (item,) = result.value_sets
    assert item.key == "sglt2"
    texts = [c.text for c in item.changes]
    assert texts == ["codes: added A10BK01, A10BK03; removed A10BK*", "half life: 13 h → 12 h"]
    removed = diff(protocol(), protocol(value_sets=PROTOCOL["value_sets"][:2], criteria=PROTOCOL["criteria"][:1]))
    assert [(v.key, v.status) for v in removed.value_sets] == [("t1dm", "removed")]


def test_a_history_rule_changed_shows_its_window_and_count():
    from rules.diff import rule_changes

    changes = rule_changes(
        "any medications in sglt2 within 8 weeks before screening",
        "any medications in sglt2 within 12 weeks before screening",
        {},
    )
    assert [c.text for c in changes] == [
        "any medications in sglt2 within 8 weeks before screening"
        " → any medications in sglt2 within 12 weeks before screening"
    ]
    changes = rule_changes("count of medications in sglt2 >= 2", "count of medications in sglt2 >= 3", {})
    assert changes[0].kind == "history"
    added = rule_changes("any diagnoses in t1dm", "any diagnoses in t1dm or no medications in sglt2", {})
    assert "branch added to `or`: no medications in sglt2" in [c.text for c in added]


def test_a_list_in_one_text_such_as_a_csv_cell_is_refused_in_words(compiled):
    with pytest.raises(SubjectInputErrors) as raised:
        compiled.dictionary.normalize(subject(medications="A10BK01 2026-10-01"))
    (error,) = raised.value.errors
    assert error.field == "medications"
    assert "a list cannot be given as one text (a CSV cell)" in error.expected


def test_a_formula_cannot_read_a_list():
    variables = [*PROTOCOL["variables"], {"name": "n", "label": "n", "type": "number", "formula": "medications + 1"}]
    with pytest.raises(ProtocolError, match="`medications` is a list: a formula reads single values"):
        rules.compile_protocol(protocol(variables=variables))


def test_a_washout_is_explained_in_hours(compiled):
    entry = {**DAPA, "start": day(-100), "end": day(-1)}
    decision = rules.decide(compiled, subject(medications=[entry]))
    assert criterion(decision, "EX-WASHOUT").sentence.startswith(
        "Medications in SGLT2 inhibitors within 5 half-lives (65 h) before screening: dapagliflozin (A10BK01)"
    )


def test_two_tests_whose_names_join_alike_keep_their_own_counts():
    value_sets = [
        {"name": "c", "system": "ATC", "codes": ["A10BK*"]},
        {"name": "b_c", "system": "ATC", "codes": ["A10BA*"]},
    ]
    variables = [{"name": "a_b", "type": "list", "system": "ATC"}, {"name": "a", "type": "list", "system": "ATC"}]
    criteria = [
        {"code": "X", "kind": "inclusion", "text": "t", "rule": "any a_b in c"},
        {"code": "Y", "kind": "inclusion", "text": "t", "rule": "any a in b_c"},
    ]
    compiled = rules.compile_protocol(protocol(value_sets=value_sets, variables=variables, criteria=criteria))
    data = subject(a_b=[{"code": "A10BK01"}], a=[{"code": "A10BK01"}])
    assert (outcome(compiled, "X", data), outcome(compiled, "Y", data)) == ("pass", "fail")


def test_an_atc_code_in_an_icd_10_cm_list_is_refused_not_counted_as_nothing():
    """A drug code typed into a diagnosis list passed the shape check and silently never matched."""
    from rules import lists

    assert lists.code_problem("ICD-10-CM", "A10AE04") is not None
    assert lists.code_problem("ICD-10-CM", "E11.65") is None
    assert lists.code_problem("ICD-10-CM", "S72.0XXA") is None  # X placeholders are ICD-10-CM's own
    assert lists.code_problem("ATC", "A10AE04") is None
