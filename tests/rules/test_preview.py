"""The rule editor's preview: the sentence a rule stands for, in the words explanations use."""

from __future__ import annotations

from importlib.resources import files

import pytest

import rules
from rules.checker import check_rule
from rules.dictionary import DataDictionary
from rules.explain import _RELATION
from rules.preview import preview

EXAMPLES = files("rules").joinpath("protocols/examples")
PROTOCOLS = ["seed", *sorted(p.name for p in EXAMPLES.iterdir() if p.name.endswith(".yaml"))]


@pytest.fixture(scope="module")
def dictionary(seed) -> DataDictionary:
    return DataDictionary(seed)


def _said(text: str, dictionary: DataDictionary, kind: str | None = "inclusion") -> str:
    return preview(check_rule(text, dictionary, kind=kind), dictionary, kind)


@pytest.mark.parametrize(
    ("rule", "kind", "sentence"),
    [
        ("anc >= 1 x10^9/L", "inclusion", "Eligible only if ANC is at least 1 x10^9/L."),
        ("anc >= 1000 /µL", "inclusion", "Eligible only if ANC is at least 1000 /µL (1 x10^9/L)."),
        ("not (hgb < 60 g/L)", "inclusion", "Eligible only if Haemoglobin is not below 60 g/L."),
        ("alt <= 3 x ULN", "exclusion", "Not eligible if ALT is at most 3 x ULN."),
        ("not breastfeeding", "exclusion", "Not eligible if Breastfeeding: no."),
        ("sex is female", "inclusion", "Eligible only if Sex is female."),
        ("sex is not female", "inclusion", "Eligible only if Sex is not female."),
        (
            "hbsag_positive or (hbcab_positive and hbv_dna > ULN)",
            "exclusion",
            "Not eligible if HBsAg positive: yes or (HBcAb positive: yes and HBV DNA is above ULN).",
        ),
        (
            "at least 2 of (wbc >= 3 x10^9/L, anc >= 1 x10^9/L, hgb >= 60 g/L)",
            "inclusion",
            "Eligible only if at least 2 of (White blood cell count is at least 3 x10^9/L;"
            " ANC is at least 1 x10^9/L; Haemoglobin is at least 60 g/L).",
        ),
        (
            "if sex is female then not breastfeeding",
            "inclusion",
            "Eligible only if Breastfeeding: no, where Sex is female.",
        ),
        (
            "last_csf_date within 2 weeks before screening",
            None,
            "True when Last colony-stimulating factor dose is within 2 weeks before screening.",
        ),
    ],
)
def test_each_shape_reads_as_written(dictionary, rule, kind, sentence):
    assert _said(rule, dictionary, kind) == sentence


def test_the_relation_words_are_the_explanations_own(dictionary):
    """A failing ANC reads `... is below 1 x10^9/L` in an explanation; the preview of its negation says the same."""
    assert _RELATION[">="][1] in _said("not (anc >= 1 x10^9/L)", dictionary)


@pytest.mark.parametrize("name", PROTOCOLS)
def test_every_criterion_of_every_shipped_protocol_has_a_preview(seed, name):
    protocol = seed if name == "seed" else rules.loads_protocol(EXAMPLES.joinpath(name).read_text(encoding="utf-8"))
    dictionary = DataDictionary(protocol)
    for criterion in protocol.criteria:
        sentence = _said(criterion.rule, dictionary, criterion.kind)
        lead = "Eligible only if " if criterion.kind == "inclusion" else "Not eligible if "
        assert sentence.startswith(lead) and sentence.endswith(".")
        assert sentence.count("(") == sentence.count(")"), (criterion.code, sentence)
    for variable in protocol.variables:
        if variable.condition:
            assert _said(variable.condition, dictionary, None).startswith("True when ")
