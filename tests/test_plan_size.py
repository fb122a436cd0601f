"""`inv plan.size`: the memory estimate grows with the game data, says when the VM is too small, and adds up."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from bezgelor_tasks import settings_load
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.costs import estimate_costs, load_prices, parse_vm_size
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.sizing import (
    MB,
    DataScan,
    estimate_from_bytes,
    estimate_memory,
    fly_memory_step,
    recommendation,
    scale_commands,
)

REPO = Path(__file__).resolve().parents[1]


# -- a minimal Bezgelor-shaped umbrella with real JSON game data -------------------------------------------

def make_umbrella(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mix.exs").write_text(
        'defmodule Bezgelor.Umbrella.MixProject do\n  use Mix.Project\n\n'
        '  def project, do: [apps_path: "apps", version: "0.1.0", deps: []]\nend\n')
    for app in ("bezgelor_portal", "bezgelor_data", "bezgelor_db"):
        (root / "apps" / app).mkdir(parents=True, exist_ok=True)
        (root / "apps" / app / "mix.exs").write_text(f"# {app}\n")
    return root


def write_game_data(root: Path, total_bytes: int, files: int = 4) -> int:
    """Write `files` real JSON files (arrays of creature records) totalling about `total_bytes`; returns bytes."""
    record = json.dumps({"id": 12345, "name": "Stormtalon", "zone": 42, "faction": "Dominion",
                         "stats": {"hp": 98000, "level": 20}, "loot": [1, 2, 3, 4]})
    written = 0
    for i in range(files):
        folder = root / "apps" / "bezgelor_data" / "priv" / ("db" if i % 2 else "db/creatures")
        folder.mkdir(parents=True, exist_ok=True)
        count = max(1, total_bytes // files // (len(record) + 1))
        body = "[" + ",".join([record] * count) + "]"
        (folder / f"table_{i}.json").write_text(body)
        written += len(body)
    json.loads((folder / f"table_{files - 1}.json").read_text())  # the data really is JSON
    return written


def open_checkout(root: Path, **env: str) -> Checkout:
    return Checkout.open(settings_load.load(root, environ=env))


# -- the estimate -----------------------------------------------------------------------------------------

def test_the_estimate_grows_with_the_game_data(tmp_path):
    small = make_umbrella(tmp_path / "small")
    large = make_umbrella(tmp_path / "large")
    write_game_data(small, 1 * MB)
    write_game_data(large, 24 * MB)

    est_small = estimate_memory(open_checkout(small))
    est_large = estimate_memory(open_checkout(large))

    assert est_small.data_files == est_large.data_files == 4
    assert est_large.data_bytes > 20 * est_small.data_bytes
    assert est_large.parts["game data in ETS"] > est_small.parts["game data in ETS"]
    assert est_large.total_mb > est_small.total_mb
    assert est_large.headroom_mb < est_small.headroom_mb
    # Only the game data part depends on the data; the rest is the plan's fixed overhead.
    fixed = {k: v for k, v in est_small.parts.items() if k != "game data in ETS"}
    assert fixed == {"BEAM base": 200, "Phoenix/Cowboy": 100, "GenServers": 200, "DB pool": 50}
    assert {k: v for k, v in est_large.parts.items() if k != "game data in ETS"} == fixed


def test_only_json_under_the_data_apps_priv_counts(tmp_path):
    co_root = make_umbrella(tmp_path / "co")
    write_game_data(co_root, 2 * MB, files=2)
    priv = co_root / "apps" / "bezgelor_data" / "priv"
    (priv / "README.md").write_text("x" * MB)
    (priv / "deep" / "er").mkdir(parents=True)
    (priv / "deep" / "er" / "quests.json").write_text("[]")
    (co_root / "apps" / "bezgelor_portal" / "big.json").write_text("[" + "0," * MB + "0]")

    est = estimate_memory(open_checkout(co_root))

    assert est.data_files == 3
    json_sizes = sum(p.stat().st_size for p in priv.rglob("*.json"))
    assert est.data_bytes == json_sizes
    assert est.data_dir == "apps/bezgelor_data/priv"


def test_a_vm_too_small_for_the_data_gets_a_bigger_size_and_the_fly_command(tmp_path):
    co_root = make_umbrella(tmp_path / "co")
    write_game_data(co_root, 120 * MB, files=6)
    co = open_checkout(co_root, BEZGELOR_VM_MEMORY_MB="1280")

    est = estimate_memory(co)

    # 120 MB of JSON is ~300 MB in ETS + 550 MB of runtime = ~850 MB; with a 512 MB margin that needs 1.4 GB.
    assert not est.ok
    assert est.required_mb == est.total_mb + est.margin_mb > 1280
    assert est.recommended_mb == 2048
    cmds = scale_commands(co.settings, est)
    assert [c.argv for c in cmds] == [("fly", "scale", "memory", "2048", "-a", "bezgelor")]
    advice = "\n".join(recommendation(co.settings, est))
    assert "BEZGELOR_VM_MEMORY_MB=2048" in advice and "fly scale memory 2048 -a bezgelor" in advice

    small_root = make_umbrella(tmp_path / "small")
    write_game_data(small_root, 8 * MB)
    est_small = estimate_memory(open_checkout(small_root, BEZGELOR_VM_MEMORY_MB="1280"))
    assert est_small.ok and recommendation(co.settings, est_small) == []


def test_the_plans_own_numbers_1gb_of_json_wants_4gb():
    s = settings_load.load("/nonexistent", environ={})
    est = estimate_from_bytes(s, DataScan(Path("/x"), True, 10, 1024 * MB))
    assert est.parts["game data in ETS"] == 2560
    assert est.total_mb == 3110
    assert (est.total_low_mb, est.total_high_mb) == (2598, 3622)
    assert est.recommended_mb == 4096 and est.ok
    assert 500 <= est.headroom_mb <= 1024  # "leaves ~500MB-1GB headroom"
    # At the plan's upper bound (3x) 1 GB of data does not fit in 4 GB with room to spare: we say so.
    assert any("3x" in n for n in est.notes)


def test_past_what_shared_cpu_2x_allows_the_advice_adds_cpus(tmp_path):
    s = settings_load.load(tmp_path, environ={})
    est = estimate_from_bytes(s, DataScan(Path("/x"), True, 10, 2 * 1024 * MB))
    # 2 GB of data: 5120 + 550 = 5670 MB, + 20% margin = 6804 -> 7168 MB, above shared-cpu-2x's 4096 MB.
    assert est.recommended_mb == 7168 and est.recommended_cpus == 4
    [cmd] = scale_commands(s, est)
    assert cmd.argv == ("fly", "scale", "vm", "shared-cpu-4x", "--vm-memory", "7168", "-a", "bezgelor")
    assert "BEZGELOR_VM_CPUS=4" in "\n".join(recommendation(s, est))


def test_the_fly_commands_we_recommend_are_ones_flyctl_accepts(tmp_path):
    s = settings_load.load(tmp_path, environ={})
    argvs = [c.argv for size in (512, 2048, 6 * 1024)
             for c in scale_commands(s, estimate_from_bytes(s, DataScan(Path("/x"), True, 1, size * MB)))]
    assert len(argvs) == 3
    proc = subprocess.run([sys.executable, "-m", "bezgelor_tasks.fly.grammar"],
                          input="\n".join(json.dumps(a) for a in argvs), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_fly_memory_steps():
    assert [fly_memory_step(mb) for mb in (1, 256, 257, 1000, 2048, 2049, 4096, 4097)] == \
        [256, 256, 512, 1024, 2048, 3072, 4096, 5120]


def test_a_checkout_without_game_data_is_estimated_with_a_note(tmp_path):
    co_root = make_umbrella(tmp_path / "co")
    est = estimate_memory(open_checkout(co_root))
    assert est.data_bytes == 0 and not est.data_found
    assert est.total_mb == 550
    assert any("does not exist" in n for n in est.notes)


def test_a_vm_bigger_than_its_cpus_allow_is_pointed_out(tmp_path):
    s = settings_load.load(tmp_path, environ={"BEZGELOR_VM_CPUS": "1", "BEZGELOR_VM_MEMORY_MB": "4096"})
    est = estimate_from_bytes(s, DataScan(Path("/x"), True, 1, MB))
    assert any("shared-cpu-1x allows at most 2048 MB" in n and "BEZGELOR_VM_CPUS=2" in n for n in est.notes)


# -- costs ------------------------------------------------------------------------------------------------

def test_the_price_table_reproduces_flys_published_prices():
    prices = load_prices()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", prices.as_of)
    assert prices.published_examples
    for ex in prices.published_examples:
        kind, cpus = parse_vm_size(ex["size"])
        assert abs(prices.machine(kind, cpus, ex["memory_mb"]) - Decimal(str(ex["per_month"]))) <= Decimal("0.02"), ex


def test_the_cost_lines_add_up_to_the_total(tmp_path):
    s = settings_load.load(tmp_path, environ={"BEZGELOR_PG_CLUSTER_SIZE": "2"})
    costs = estimate_costs(s)
    assert [line.item for line in costs.lines] == ["App VM", "Postgres VM", "Postgres volume", "Dedicated IPv4"]
    assert costs.total == sum(line.monthly for line in costs.lines)
    by_item = {line.item: line.monthly for line in costs.lines}
    assert by_item["App VM"] == Decimal("21.38")          # shared-cpu-2x, 4 GB
    assert by_item["Postgres VM"] == Decimal("11.38")     # 2 x shared-cpu-1x, 1 GB
    assert by_item["Postgres volume"] == Decimal("3.00")  # 2 x 10 GB x $0.15
    assert by_item["Dedicated IPv4"] == Decimal("2.00")
    assert costs.total == Decimal("37.76")


def test_more_memory_costs_more(tmp_path):
    s = settings_load.load(tmp_path, environ={})
    assert estimate_costs(s, vm_memory_mb=8192, vm_cpus=4).total > estimate_costs(s).total


def test_a_broken_price_table_names_the_file(tmp_path):
    bad = tmp_path / "prices.json"
    bad.write_text('{"as_of": "2026-01-01"}')
    with pytest.raises(UserError, match="prices.json"):
        load_prices(bad)
    with pytest.raises(UserError, match="missing"):
        load_prices(tmp_path / "nope.json")


# -- the command line -------------------------------------------------------------------------------------

def run_inv(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("BEZGELOR_", "FLY_"))}
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), *args],
                          capture_output=True, text=True, env=full_env, timeout=120)


def test_inv_plan_size_json_reports_memory_recommendation_and_costs(tmp_path):
    co_root = make_umbrella(tmp_path / "co")
    write_game_data(co_root, 120 * MB, files=3)

    proc = run_inv("plan.size", "--root", str(co_root), "--json", BEZGELOR_VM_MEMORY_MB="1280")

    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    mem = doc["memory"]
    assert mem["data_files"] == 3 and mem["data_bytes"] > 100 * MB
    assert sum(mem["parts_mb"].values()) == mem["total_mb"]
    assert mem["headroom_mb"] == 1280 - mem["total_mb"]
    assert mem["ok"] is False
    assert doc["recommendation"]["memory_mb"] == 2048
    assert doc["recommendation"]["commands"][0]["argv"] == ["fly", "scale", "memory", "2048", "-a", "bezgelor"]
    assert doc["costs"]["prices_as_of"] == load_prices().as_of
    assert round(sum(line["monthly"] for line in doc["costs"]["lines"]), 2) == doc["costs"]["total"]
    assert doc["costs_recommended"]["total"] > doc["costs"]["total"]


def test_inv_plan_size_prints_tables_whose_numbers_add_up(tmp_path):
    co_root = make_umbrella(tmp_path / "co")
    write_game_data(co_root, 40 * MB)

    proc = run_inv("plan.size", "--root", str(co_root))

    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    mb = {m["name"].strip(): int(m["mb"]) for m in
          re.finditer(r"^  (?P<name>[A-Za-z/ ]+?)\s+(?P<mb>-?\d+) MB", out, re.M)}
    parts = ["game data in ETS", "BEAM base", "Phoenix/Cowboy", "GenServers", "DB pool"]
    assert sum(mb[p] for p in parts) == mb["total"]
    assert mb["configured VM"] - mb["total"] == mb["headroom"]
    assert mb["configured VM"] == 4096
    assert "4096 MB holds the estimate" in out

    dollars = [Decimal(m["usd"]) for m in re.finditer(r"^  (?!total)\S.*\$(?P<usd>\d+\.\d\d)$", out, re.M)]
    total = Decimal(re.search(r"^  total\s+\$(\d+\.\d\d)$", out, re.M)[1])
    assert len(dollars) == 4 and sum(dollars) == total
    assert f"prices as of {load_prices().as_of}" in out


def test_inv_plan_size_on_a_folder_that_is_not_bezgelor_says_what_to_pass(tmp_path):
    proc = run_inv("plan.size", "--root", str(tmp_path / "nowhere"))
    assert proc.returncode == 1
    assert "--root" in proc.stderr and "Traceback" not in proc.stderr


def test_managed_postgres_is_priced_by_plan(tmp_path):
    s = settings_load.load(tmp_path, environ={"BEZGELOR_PG_FLAVOR": "mpg"})
    costs = estimate_costs(s)
    assert [line.item for line in costs.lines] == ["App VM", "Managed Postgres", "Dedicated IPv4"]
    assert costs.total == sum(line.monthly for line in costs.lines)
