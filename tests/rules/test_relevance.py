"""The cohort-aware form: which variables a cohort's criteria read, and the answers that make one moot."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rules
from rules.compiler import CompiledProtocol
from rules.ir import fields_of
from rules.relevance import relevance


@pytest.fixture(scope="session")
def sle(compiled: CompiledProtocol):
    return relevance(compiled, "SLE")


def test_only_the_cohorts_variables_are_asked(sle, compiled):
    assert sle.used("sle_classification_2019") and sle.used("sledai_2k")
    for other in ("ssc_antibody_positive", "mmt8", "platelets", "muscle_enzyme"):
        assert not sle.used(other)
    assert relevance(compiled, "ITP").used("platelets")
    # Read through a formula (crcl = cockcroft_gault(age, weight, creatinine, sex)) and a computed ULN.
    assert sle.used("weight") and sle.used("creatinine") and sle.used("alt")


@pytest.mark.parametrize(
    ("follow_up", "needs", "moot"),
    [
        ("last_csf_date", {"csf_received": True}, {"csf_received": False}),
        ("hbv_dna", {"hbcab_positive": True}, {"hbcab_positive": False}),
        ("serum_hcg_negative", {"sex": "female", "childbearing_potential": True}, {"sex": "male"}),
        (
            "serum_hcg_negative",
            {"sex": "female", "childbearing_potential": True},
            {"sex": "female", "childbearing_potential": False},
        ),
        ("pregnant", {"sex": "female"}, {"sex": "male"}),
        ("pregnancy_planned", {"sex": "female"}, {"sex": "male"}),
    ],
)
def test_follow_up_questions_appear_when_an_earlier_answer_makes_them_matter(sle, follow_up, needs, moot):
    assert sle.conditional(follow_up)
    assert follow_up not in sle.hidden({})  # unanswered: asked, nothing is assumed
    assert follow_up not in sle.hidden(needs)
    assert follow_up in sle.hidden(moot)


def test_unconditional_questions_are_always_asked(sle):
    for name in ("age", "sex", "anc", "csf_received", "hbsag_positive"):
        assert not sle.conditional(name)
        assert sle.show_when(name) is None
    assert sle.show_when("last_csf_date") == [
        [{"node": {"field": "csf_received", "op": "==", "value": True}, "kills": False}]
    ]


def test_guards_only_read_earlier_answers(sle, compiled):
    # IN-03d is `alt <= 3 x ULN unless alt_elevation_myopathy`: the myopathy question comes after ALT
    # but ALT is a number, so it never hides the question; the question never hides ALT (it is later).
    assert not sle.conditional("alt") and not sle.conditional("alt_elevation_myopathy")


def test_a_trial_without_cohorts_reads_every_criterion(compiled):
    everything = relevance(compiled, None)
    assert everything.used("platelets") and everything.used("sledai_2k")


_CHOICES = st.sampled_from([None, True, False])


@st.composite
def _answers(draw, compiled: CompiledProtocol, base: dict[str, Any], cohort: str) -> dict[str, Any]:
    subject = dict(base)
    for variable in compiled.dictionary.variables.values():
        if variable.builtin or variable.is_derived or variable.companion_of:
            continue
        if variable.type == "boolean":
            choice = draw(_CHOICES)
            subject.pop(variable.name, None) if choice is None else subject.__setitem__(variable.name, choice)
        elif variable.type == "code":
            choice = draw(st.sampled_from([None, *variable.definition.codes]))
            subject.pop(variable.name, None) if choice is None else subject.__setitem__(variable.name, choice)
        elif variable.name in subject and draw(st.booleans()):
            subject.pop(variable.name)
            for limit in ("_uln", "_lln"):
                subject.pop(variable.name + limit, None)
    subject["cohort"] = cohort
    return subject


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), cohort=st.sampled_from(["SLE", "SSc", "IIM", "ITP"]))
def test_a_hidden_variable_never_changes_an_outcome(compiled, eligible_subjects, data, cohort):
    base = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in eligible_subjects[cohort].items()}
    subject = data.draw(_answers(compiled, base, cohort))
    found = relevance(compiled, cohort)
    hidden = found.hidden(compiled.dictionary.normalize(subject).values)
    # Unused variables are not asked at all: dropping them must not matter either.
    dropped = hidden | {name for name in found.order if not found.used(name)}
    trimmed = {
        k: v
        for k, v in subject.items()
        if k not in dropped and k.removesuffix("_uln").removesuffix("_lln") not in dropped
    }
    assert rules.outcomes(compiled, trimmed) == rules.outcomes(compiled, subject)


def test_a_follow_up_waits_for_its_earlier_question(sle):
    assert "last_csf_date" not in sle.asked({})
    assert "last_csf_date" not in sle.asked({"csf_received": False})
    assert "last_csf_date" in sle.asked({"csf_received": True})
    assert {"age", "sex", "anc", "csf_received"} <= sle.asked({})
    # An answer to a question that is not asked does not open its own follow-ups.
    assert "serum_hcg_negative" not in sle.asked({"sex": "male", "childbearing_potential": True})
    assert "serum_hcg_negative" in sle.asked({"sex": "female", "childbearing_potential": True})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), cohort=st.sampled_from(["SLE", "SSc", "IIM", "ITP"]))
def test_what_is_not_asked_is_moot_or_waits_for_an_unanswered_question(compiled, eligible_subjects, data, cohort):
    base = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in eligible_subjects[cohort].items()}
    values = compiled.dictionary.normalize(data.draw(_answers(compiled, base, cohort))).values
    found = relevance(compiled, cohort)
    asked, hidden = found.asked(values), found.hidden(values)
    assert not asked & hidden
    for name in {n for n in found.order if found.used(n)} - asked - hidden:
        waiting_on = {t for occ in found.occurrences[name] for g in occ for t in fields_of(g.node)}
        assert any(n in asked and n not in values for n in waiting_on), name
