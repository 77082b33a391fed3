"""The `eligo` command line."""

from __future__ import annotations

import json

from click.testing import CliRunner

from service.cli import main


def test_decide_prints_the_explanation(subject):
    data = subject("SLE", {"hbcab_positive": "yes"})
    result = CliRunner().invoke(main, ["decide", "-"], input=json.dumps(data))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("INCOMPLETE  (NCT07193667 v1, SLE)")
    assert "? EX-08a      not checked: HBV DNA, HBV DNA upper limit of normal missing" in result.output
    assert "missing: hbv_dna, hbv_dna_uln" in result.output


def test_decide_reports_bad_input_without_a_traceback():
    result = CliRunner().invoke(main, ["decide", "-"], input='{"cohort": "SLE", "anc": "lots"}')
    assert result.exit_code == 1
    assert "anc: got 'lots', expected a number" in result.output
    assert "Traceback" not in result.output


def test_protocol_schema_prints_the_published_schema():
    from rules.protocol import json_schema_text

    result = CliRunner().invoke(main, ["protocol-schema"])
    assert result.exit_code == 0
    assert result.output == json_schema_text()
    assert json.loads(result.output)["title"] == "Eligo protocol file"
