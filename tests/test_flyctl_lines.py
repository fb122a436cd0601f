"""flyctl lines written in files: the docs init writes are rendered from the builders (so they are valid flyctl,
with the flags and flavor of the settings, by construction), and verify reads every shell script and workflow
of the checkout, at any depth, against flyctl's grammar and our rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bezgelor_tasks.areas import docs, scripts
from bezgelor_tasks.areas.docs import docs_changes
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.fly import grammar
from bezgelor_tasks.fly.command_lines import fly_lines, judge
from tests.test_init_infra import make_umbrella, open_checkout

TEMPLATES = Path(docs.__file__).resolve().parents[1] / "templates"


def inline_code(markdown: str) -> list[tuple[str, ...]]:
    """flyctl command lines quoted in prose (`fly ... --flag` spans; `fly deploy` alone names a command)."""
    spans = [m for m in re.findall(r"`([^`\n]+)`", markdown) if re.match(r"fly \w", m)]
    return [line.argv for span in spans for line in fly_lines(span) if any(a.startswith("-") for a in line.argv)]


@pytest.fixture(params=["flex", "mpg"])
def flavored(request: pytest.FixtureRequest, tmp_path: Path) -> Checkout:
    return open_checkout(make_umbrella(tmp_path / "bezgelor"), pg_flavor=request.param, app="bz-game",
                         db_app="bz-db", auth_port=7600)


def test_every_flyctl_line_in_the_generated_docs_is_valid_flyctl_that_keeps_our_rules(flavored: Checkout) -> None:
    texts = {c.rel: c.new for c in docs_changes(flavored)}
    argvs = [line.argv for text in texts.values() for line in fly_lines(text, "markdown")]
    argvs += [argv for text in texts.values() for argv in inline_code(text)]
    assert len(argvs) > 30
    for argv in argvs:
        ok, why = grammar.accepts(argv)
        assert ok and "probably ignored" not in why, (argv, why)
        assert judge(argv) == [], argv
    deploys = [a for a in argvs if a[1] == "deploy"]
    assert deploys and all("--ha=false" in a for a in deploys)
    text = "\n".join(texts.values())
    assert "-a bz-game" in text and "-a bezgelor " not in text and "7600" in text
    if flavored.settings.pg_flavor == "mpg":
        assert "fly mpg create" in text and "fly mpg attach" in text and "fly postgres" not in text
        assert "DATABASE_URL=$DIRECT_DATABASE_URL /app/bin/migrate" in text
    else:
        create = next(a for a in argvs if a[1:3] == ("postgres", "create"))
        assert "--image-ref" in create and "--enable-backups" in create and "fly mpg" not in text


def test_the_docs_templates_type_no_flyctl_line_by_hand() -> None:
    """Every command line in the docs comes from a builder: the templates hold placeholders, not commands."""
    typed = []
    for template in sorted((TEMPLATES / "docs").glob("*.md")):
        for line in fly_lines(template.read_text(), "markdown"):
            typed.append((template.name, line.line, " ".join(line.argv)))
        typed += [(template.name, 0, " ".join(argv)) for argv in inline_code(template.read_text())]
    assert typed == []


SCRIPT = """\
#!/usr/bin/env bash
set -euo pipefail
APP=bezgelor
fly secrets set SECRET_KEY_BASE="$(mix phx.gen.secret)" -a "$APP"
fly deploy -a "$APP" --remote-only
fly releases rollback 3 -a "$APP"
fly logs -a "$APP" -n 10 2>&1 | tail
flyctl status -a "$APP" && fly ips allocate-v4 -a "$APP" --yes
echo "$(fly releases --image --json -a "$APP")" > /dev/null
fly deploy -a "$APP" --ha=false \\
  --image "registry.fly.io/$APP:v1"
"""

WORKFLOW = """\
name: ops
on: workflow_dispatch
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - run: fly deploy -a ${{ vars.APP }} --remote-only
      - name: secrets
        run: |
          fly secrets import -a ${{ vars.APP }} --stage < secrets.env
          fly postgres create --name db --region lax
"""


def test_scripts_anywhere_in_the_checkout_are_read_and_the_issues_bad_lines_found(tmp_path: Path) -> None:
    co = open_checkout(make_umbrella(tmp_path / "bezgelor"))
    (co.root / "scripts" / "fly").mkdir(parents=True)
    (co.root / "scripts" / "fly" / "deploy.sh").write_text(SCRIPT)
    (co.root / "bin").mkdir()
    (co.root / "bin" / "ops").write_text("#!/bin/sh\nfly ips allocate v4 -a bezgelor\n")   # no suffix, a shebang
    (co.root / ".github" / "workflows").mkdir(parents=True)
    (co.root / ".github" / "workflows" / "ops.yml").write_text(WORKFLOW)
    (co.root / "deps" / "x").mkdir(parents=True)
    (co.root / "deps" / "x" / "vendored.sh").write_text("fly releases rollback 1\n")        # not the checkout's
    found = {(f.file, f.line, f.id) for f in scripts.check(CheckContext(co))}
    assert found == {
        ("scripts/fly/deploy.sh", 4, "scripts.secret-on-argv"),
        ("scripts/fly/deploy.sh", 5, "scripts.deploy-ha"),
        ("scripts/fly/deploy.sh", 6, "scripts.releases-rollback"),
        ("scripts/fly/deploy.sh", 7, "scripts.logs-lines"),
        ("bin/ops", 2, "scripts.ips-allocate"),
        (".github/workflows/ops.yml", 7, "scripts.deploy-ha"),
        (".github/workflows/ops.yml", 11, "scripts.postgres-create-org"),
    }
    assert all(f.severity == "warning" and f.fix for f in scripts.check(CheckContext(co)))


def test_judging_a_line_follows_flyctls_parser_not_its_spelling() -> None:
    assert judge(("fly", "deploy", "--ha=false", "-a", "x")) == []
    assert [p.id for p in judge(("fly", "deploy", "--ha", "false"))] == ["scripts.deploy-ha"]   # `false` is a path
    assert judge(("fly", "deploy", "--build-only", "--push", "-a", "x")) == []                # builds, starts nothing
    no_region = ("fly", "deploy", "-a", "x", "--region", "lax", "--ha=false")
    assert [p.id for p in judge(no_region)] == ["scripts.not-flyctl"]
    assert judge(("fly", "$SUBCOMMAND", "-a", "x")) == []                  # decided at run time: not ours to judge
    assert [p.id for p in judge(("fly", "secrets", "set", "A=$B", "-a", "x"))] == ["scripts.secret-on-argv"]
