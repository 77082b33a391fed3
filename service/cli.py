"""The `eligo` command line."""

from __future__ import annotations

import json
import os
import sys

import click

import rules
from rules.errors import EligoError


@click.group()
def main() -> None:
    """Eligo: clinical trial eligibility decisions, explained."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=os.cpu_count() or 1, show_default=True, type=int)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the API with gunicorn."""
    from gunicorn.app.wsgiapp import run

    click.echo(f"Eligo on http://{host}:{port}/api/v1/protocols (protocol {rules.SEED_PROTOCOL} loaded)")
    sys.argv = ["gunicorn", "--bind", f"{host}:{port}", "--workers", str(workers), "service:create_app()"]
    run()


@main.command()
@click.argument("subject_file", type=click.File("r"))
@click.option("--protocol", "protocol_file", type=click.Path(exists=True, dir_okay=False), help="A protocol file.")
@click.option("--json", "as_json", is_flag=True, help="Print the full decision as JSON.")
def decide(subject_file, protocol_file: str | None, as_json: bool) -> None:
    """Decide one subject given as a JSON file ('-' for standard input)."""
    try:
        protocol = rules.load_protocol(protocol_file) if protocol_file else rules.seed_protocol()
        decision = rules.decide(rules.compile_protocol(protocol), json.load(subject_file))
    except json.JSONDecodeError as error:
        raise click.ClickException(f"the subject file is not JSON: {error}") from None
    except EligoError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(decision.to_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(f"{decision.decision.upper()}  ({decision.protocol} v{decision.version}, {decision.cohort})")
    marks = {"pass": "✓", "fail": "✗", "unknown": "?", "not_applicable": "–"}
    for result in decision.criteria:
        if result.outcome != "not_applicable":
            click.echo(f"  {marks[result.outcome]} {result.code:<11} {result.sentence}")
    if decision.missing:
        click.echo(f"missing: {', '.join(decision.missing)}")
