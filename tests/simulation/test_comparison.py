"""The policy comparison, the cost model and the outputs on small scenarios."""

from __future__ import annotations

import json

import pytest

from bench.merge import merge
from sim import traces
from sim.__main__ import deployed_workflow_type, main
from sim.cost import (
    comparison,
    function_memory_mb,
    load_call_counts,
    load_prices,
    per_million,
    usage_per_photo,
)
from sim.plots import plot_scenario
from sim.policies import POLICIES
from sim.run import run_scenario
from sim.scenarios import SCENARIOS, Scenario

SMALL = Scenario("small", "200 photos over 20 s", lambda: traces.steady(10, 20), max_workers=5)


def test_every_policy_runs_the_same_scenario(params, tmp_path):
    runs = run_scenario(params, SMALL)
    assert [r.policy for r in runs] == [p.name for p in POLICIES]
    assert all(
        r.figures["every_job_finished_once"] for r in runs if not r.figures["unfinished_jobs"]
    )
    assert plot_scenario(SMALL, runs, tmp_path).stat().st_size > 10_000


def test_express_is_cheaper_than_standard_at_load(params):
    ours = run_scenario(params, SMALL)[0]
    cost = comparison(ours.figures)
    assert cost["cheaper"] == "EXPRESS"
    assert cost["call_counts"]["path"] in load_call_counts()["paths"]
    standard, express = (cost[w]["usd_per_million_photos"] for w in ("STANDARD", "EXPRESS"))
    assert standard["step_functions_standard_per_1000_transitions"] > (
        express["step_functions_express_per_million_requests"]
        + express["step_functions_express_per_gb_second"]
    )


def test_per_million_reads_the_unit_from_the_price_name():
    prices = load_prices()
    lines = per_million(
        {"s3_put_copy_post_list_per_1000_requests": 2, "sqs_standard_per_million_requests": 3},
        prices,
    )
    assert lines["s3_put_copy_post_list_per_1000_requests"] == pytest.approx(2 * 1000 * 0.005)
    assert lines["sqs_standard_per_million_requests"] == pytest.approx(3 * 0.40)


def test_every_price_used_is_in_the_dated_file_with_a_source_and_a_status(params):
    prices = load_prices()
    assert prices["date"] and prices["region"] == "us-east-1"
    ours = run_scenario(params, SMALL)[0].figures
    memory = function_memory_mb("prod")
    used = set()
    for counts in load_call_counts()["paths"].values():
        for workflow in ("STANDARD", "EXPRESS"):
            usage, unpriced = usage_per_photo(
                counts,
                workflow,
                memory_mb=memory,
                held_request_s=ours["p50_s"],
                ec2_seconds_per_photo=ours["instance_seconds_billed"] / ours["jobs"],
            )
            assert unpriced == {}
            used |= set(usage)
    assert used <= set(prices["prices"])
    for entry in prices["prices"].values():
        assert entry["status"] in {"verified", "secondary", "unverified"} and entry[
            "source"
        ].startswith("http")


def test_the_template_deploys_a_known_workflow_type():
    assert deployed_workflow_type() in {"EXPRESS", "STANDARD"}


def test_the_cli_writes_figures_plots_and_the_merged_bench(tmp_path, capsys):
    out = tmp_path / "sim.json"
    assert (
        main(
            [
                "--out",
                str(out),
                "--plots",
                str(tmp_path / "plots"),
                "--engine",
                str(tmp_path / "none.json"),
                "--scenarios",
                "course-burst",
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert set(report["scenarios"]["course-burst"]["policies"]) == {p.name for p in POLICIES}
    assert (tmp_path / "plots" / "course-burst.png").is_file()
    assert "| ours |" in capsys.readouterr().out
    merged = merge(tmp_path)
    assert merged["sim"]["scenarios"] and merged["engine"] is None and merged["local_stack"] is None


def test_scenario_names_are_unique():
    names = [s.name for s in SCENARIOS]
    assert len(names) == len(set(names))
