"""The protocol file: faithful to the trial page, round-trips, hashes, and refuses bad files."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

import rules
from rules import test_cases
from rules.compiler import compile_protocol
from rules.errors import EngineLimitError, ProtocolError, RuleErrors
from rules.protocol import from_dict, loads


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_every_criterion_text_is_verbatim_from_the_trial_page(seed):
    page = _words(files("rules").joinpath("protocols/NCT07193667.source.txt").read_text(encoding="utf-8"))
    for criterion in seed.criteria:
        for part in _words(criterion.text).split(" ... "):
            for sentence in re.split(r"(?<=\.) (?=Definition|Note)", part):
                assert sentence in page, f"{criterion.code}: {sentence!r}"


def test_seed_has_every_article_and_all_thirteen_exclusions(seed):
    codes = [c.code for c in seed.criteria]
    exclusions = {re.match(r"EX-\d+", c).group(0) for c in codes if c.startswith("EX-")}
    assert len(exclusions) == 13
    for cohort in ("SLE", "SSC", "IIM", "ITP"):
        assert any(c.startswith(f"IN-{cohort}-") for c in codes)
    for either in ("IN-SSC-4/5", "IN-IIM-4/5", "IN-ITP-4/5"):
        criterion = next(c for c in seed.criteria if c.code == either)
        assert "one of Articles 4 and 5" in criterion.text
        assert criterion.rule.lstrip().startswith("any of")


def test_seed_test_cases_pass(seed, compiled):
    for case in seed.test_cases:
        expected, got = test_cases.expected_of(case), test_cases.result_of(compiled, case)
        assert test_cases.passes(expected, got), (case.name, expected, got)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_round_trip_keeps_content_and_hash(seed, fmt):
    again = loads(rules.dump_protocol(seed, fmt))
    assert again.content_hash == seed.content_hash
    assert again.canonical() == seed.canonical()
    assert len(again.test_cases) == len(seed.test_cases)


def test_hash_changes_with_a_threshold(seed):
    data = seed.to_dict()
    data["criteria"][2]["rule"] = "wbc >= 3.5 x10^9/L"
    assert from_dict(data).content_hash != seed.content_hash


MINIMAL = {
    "protocol": "P",
    "title": "t",
    "version": "1",
    "cohorts": [{"code": "A", "label": "A"}],
    "variables": [{"name": "level", "type": "number", "unit": "g/L"}],
    "criteria": [{"code": "C1", "kind": "inclusion", "text": "level", "rule": "level >= 1 g/L"}],
}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"criteria": [{"code": "C1", "kind": "inclusion", "text": "t", "rule": "r"}] * 2}, "duplicate criterion code"),
        ({"criteria": [{"code": "C1", "kind": "maybe", "text": "t", "rule": "level"}]}, "kind `maybe`"),
        ({"criteria": [{"code": "C1", "kind": "inclusion", "text": "t"}]}, "`rule` is required"),
        (
            {"criteria": [{"code": "C1", "kind": "inclusion", "text": "t", "rule": "level", "cohorts": ["B"]}]},
            "unknown cohort",
        ),
        ({"variables": [{"name": "level", "type": "text"}]}, "type `text`"),
        ({"variables": [{"name": "level", "type": "number", "colour": "red"}]}, "unknown key `colour`"),
        ({"protocol": None}, "`protocol` is required"),
    ],
)
def test_bad_files_are_refused_with_every_problem(change, problem):
    with pytest.raises(ProtocolError) as caught:
        from_dict({**MINIMAL, **change})
    assert any(problem in p for p in caught.value.problems)


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ([{"name": "level", "type": "number", "unit": "wombats"}], "unknown unit `wombats`"),
        ([{"name": "level", "type": "number", "unit": "g/L", "units": ["mmol/L"]}], "does not convert"),
        ([{"name": "level", "type": "code"}], "needs its list of `codes`"),
        ([{"name": "Bad Name", "type": "boolean"}], "lower case letters"),
        ([{"name": "cohort", "type": "boolean"}], "built in"),
        ([{"name": "y", "type": "number", "unit": "days", "formula": "eval(x)"}], "unknown function `eval`"),
        ([{"name": "y", "type": "number", "unit": "mL/min", "formula": "cockcroft_gault(1)"}], "takes (age, weight"),
        (
            [
                {"name": "a", "type": "number", "formula": "times(b, 2)"},
                {"name": "b", "type": "number", "formula": "times(a, 2)"},
            ],
            "cycle",
        ),
    ],
)
def test_bad_dictionaries_are_refused(variables, problem):
    with pytest.raises(ProtocolError) as caught:
        compile_protocol(from_dict({**MINIMAL, "variables": variables, "criteria": []}))
    assert problem in str(caught.value)


def test_a_bad_rule_names_its_criterion():
    with pytest.raises(RuleErrors) as caught:
        compile_protocol(
            from_dict({**MINIMAL, "criteria": [{"code": "C9", "kind": "inclusion", "text": "t", "rule": "y > 1"}]})
        )
    assert caught.value.criterion == "C9"
    assert "unknown variable `y`" in str(caught.value)


def test_engine_limits_are_reported_in_plain_words():
    variables = [{"name": f"v{i}", "type": "boolean"} for i in range(260)]
    with pytest.raises(EngineLimitError, match="the engine holds at most 254"):
        compile_protocol(from_dict({**MINIMAL, "variables": variables, "criteria": []}))


def test_dictionary_and_rule_problems_are_reported_together():
    protocol = {
        **MINIMAL,
        "variables": [
            {"name": "level", "type": "number", "unit": "g/L", "units": ["furlongs"]},
            {"name": "odd", "type": "code", "codes": ["a"], "units": ["g"]},
            {"name": "bmi", "type": "number", "unit": "kg/m2", "formula": "weight / (height in m)^2"},
        ],
        "criteria": [
            {"code": "C1", "kind": "inclusion", "text": "t", "rule": "level >= 1 g/L and nope"},
            {"code": "C2", "kind": "inclusion", "text": "t", "rule": "odd is b"},
            {"code": "C3", "kind": "exclusion", "text": "t", "rule": "level >>= 3"},
        ],
    }
    with pytest.raises(ProtocolError) as refused:
        compile_protocol(from_dict(protocol))
    text = "\n".join(refused.value.problems)
    assert "furlongs" in text  # the dictionary's problems
    assert "only numbers have units" in text
    assert "unknown variable `nope`" in text  # and the rules', in the same answer
    assert "C3" in text and "^" in text  # each rule problem with its caret


def test_every_problem_is_reported_at_once_with_its_path():
    bad = {
        **MINIMAL,
        "title": None,
        "cohorts": [{"code": "A"}, "B"],
        "variables": [{"name": "level", "type": "number", "minimum": "low"}],
        "criteria": [{"code": "C1", "kind": "inclusion", "text": "t", "rule": "level", "colour": "red"}],
    }
    with pytest.raises(ProtocolError) as caught:
        from_dict(bad)
    assert caught.value.problems == [
        "protocol: `title` is required",
        "cohorts[1]: must be a mapping",
        "variables[0] (level): `minimum` must be a number, not 'low'",
        "criteria[0] (C1): unknown key `colour` (allowed: code, cohorts, kind, notes, rationale, rule, section, text)",
    ]


def test_numbers_where_text_is_meant_and_single_items_read_as_before():
    protocol = from_dict(
        {**MINIMAL, "version": 2, "criteria": [{**MINIMAL["criteria"][0], "cohorts": "A"}], "variables": []}
    )
    assert protocol.version == "2"
    assert protocol.criteria[0].cohorts == ("A",)


SCHEMA = files("rules").joinpath("protocol.schema.json")


def test_the_published_schema_is_current():
    """rules/protocol.schema.json is the file model's schema: `eligo protocol-schema > rules/protocol.schema.json`
    regenerates it when the model changes."""
    from rules.protocol import json_schema_text

    assert SCHEMA.read_text(encoding="utf-8") == json_schema_text()


@pytest.mark.parametrize(
    "path",
    [
        "protocols/NCT07193667.yaml",
        *(
            f"protocols/examples/{p.name}"
            for p in files("rules").joinpath("protocols/examples").iterdir()
            if p.name.endswith(".yaml")
        ),
    ],
)
def test_the_seed_and_example_files_validate_against_the_schema(path):
    import json

    import jsonschema
    import yaml

    document = yaml.safe_load(files("rules").joinpath(path).read_text(encoding="utf-8"))
    jsonschema.validate(document, json.loads(SCHEMA.read_text(encoding="utf-8")))


def test_the_schema_refuses_what_the_loader_refuses():
    import json

    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    bad = {**MINIMAL, "criteria": [{**MINIMAL["criteria"][0], "kind": "maybe", "colour": "red"}]}
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(bad))
    assert len(errors) == 2
