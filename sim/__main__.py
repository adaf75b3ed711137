"""`python -m sim`: every scenario under every policy, the cost model, the targets; JSON and PNGs.

python -m sim --out out/sim.json --plots out/plots --engine out/bench-engine.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from pathlib import Path

from .cost import WORKFLOW_TYPES, comparison, ec2_usd, load_prices
from .engine_rate import load_engine_rate
from .params import FleetModel, SimParams
from .plots import plot_scenario
from .report import cost_table, policy_table, sweep_table, targets_table
from .run import check_targets, run_scenario, sweep
from .scenarios import SCENARIOS, SWEEPS

TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "template.yaml"
COST_SCENARIO = "steady-1000"


def deployed_workflow_type(template: Path = TEMPLATE) -> str:
    """The WorkflowType parameter's default in the CloudFormation template: what deploys."""
    match = re.search(
        r"WorkflowType:\s*\n(?:\s+\w+:.*\n)*?\s+Default:\s*(\w+)", template.read_text()
    )
    return match.group(1) if match else "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/sim.json"))
    parser.add_argument("--plots", type=Path, default=Path("out/plots"))
    parser.add_argument(
        "--engine",
        type=Path,
        default=Path("out/bench-engine.json"),
        help="bench-engine figures for the service time (defaults when absent)",
    )
    parser.add_argument("--model", default="facenet", choices=("facenet", "dlib"))
    parser.add_argument("--workload", default="course", choices=("course", "frame"))
    parser.add_argument("--scenarios", default="", help="comma-separated names; all when empty")
    parser.add_argument(
        "--no-sweeps", action="store_true", help="skip ours under other settings and timings"
    )
    parser.add_argument(
        "--cold-start", type=float, default=FleetModel.cold_start_s, help="launch to ready, seconds"
    )
    parser.add_argument(
        "--warm-start",
        type=float,
        default=FleetModel.warm_start_s,
        help="StartInstances on a pooled worker to polling, seconds",
    )
    parser.add_argument(
        "--describe-lag",
        type=float,
        default=FleetModel.describe_lag_s,
        help="seconds before DescribeInstances lists a launch",
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    rate = load_engine_rate(args.engine, args.model, args.workload)
    params = SimParams.for_engine(
        rate,
        cold_start_s=args.cold_start,
        warm_start_s=args.warm_start,
        describe_lag_s=args.describe_lag,
    )
    prices = load_prices()
    chosen = [s for s in SCENARIOS if not args.scenarios or s.name in args.scenarios.split(",")]
    print(
        f"sim: {rate.model} on {rate.workload} photos, {rate.batched_photos_per_second} photos/s "
        f"batched ({rate.source}); worker: {params.worker.service_s(10):.3f} s per batch of 10, "
        f"{params.settings.worker_photos_per_second} photos/s",
        file=sys.stderr,
    )

    results: dict[str, dict] = {}
    plots = []
    for scenario in chosen:
        runs = run_scenario(params, scenario)
        for run in runs:
            usd = ec2_usd(run.figures["instance_seconds_billed"], prices)
            run.figures["ec2_usd"] = round(usd, 4)
            run.figures["ec2_usd_per_million"] = round(usd / run.figures["jobs"] * 1e6, 2)
        results[scenario.name] = {run.policy: run.figures for run in runs}
        plots.append(str(plot_scenario(scenario, runs, args.plots)))
        print(
            f"\n### {scenario.name}: {scenario.description}\n\n"
            f"{policy_table(results[scenario.name])}"
        )

    report: dict = {
        "engine_rate": dataclasses.asdict(rate),
        "params": dataclasses.asdict(params),
        "scenarios": {
            s.name: {
                "description": s.description,
                "max_workers": s.max_workers,
                "policies": results[s.name],
            }
            for s in chosen
        },
        "plots": plots,
    }
    if COST_SCENARIO in results:
        ours = results[COST_SCENARIO]["ours"]
        report["cost"] = comparison(ours, prices=prices)
        report["cost"]["from_scenario"] = COST_SCENARIO
        report["cost"]["total_by_scenario"] = {
            name: {
                w: comparison(runs["ours"], prices=prices)[w]["usd_per_million_photos"]["total"]
                for w in WORKFLOW_TYPES
            }
            for name, runs in results.items()
            if "ours" in runs
        }
        report["cost"]["deployed_workflow_type"] = deployed_workflow_type()
        print(
            f"\n### Cost per million photos ({COST_SCENARIO}, ours; prices of {prices['date']}, "
            f"{prices['region']})\n"
        )
        print(cost_table(report["cost"]))
        counted = report["cost"]["call_counts"]
        print(
            f"\ncalls per photo: the {counted['path']} path's, counted by make bench-cost "
            f"({counted['source']})"
        )
        print(
            f"cheaper: {report['cost']['cheaper']}; deployed: "
            f"{report['cost']['deployed_workflow_type']}"
        )
        print(
            "total $/M photos by scenario (Standard / Express): "
            + "; ".join(
                f"{name} {t['STANDARD']:.2f} / {t['EXPRESS']:.2f}"
                for name, t in report["cost"]["total_by_scenario"].items()
            )
        )
    report["targets"] = check_targets(results, report.get("cost"), deployed_workflow_type())
    print(f"\n### Targets\n\n{targets_table(report['targets'])}")
    if not args.no_sweeps:
        report["sweeps"] = {}
        for swept in SWEEPS:
            scenarios = [s for s in chosen if s.name in swept.scenarios]
            if scenarios:
                report["sweeps"][swept.name] = {
                    "field": swept.field,
                    "by_value": sweep(params, scenarios, swept),
                }
                print(
                    f"\n### Ours with other {swept.field} ({swept.name})\n\n"
                    f"{sweep_table(report['sweeps'][swept.name]['by_value'])}"
                )
    report["wall_s"] = round(time.perf_counter() - started, 1)
    if COST_SCENARIO in results:
        report["wall_s_steady_1000_ours"] = results[COST_SCENARIO]["ours"]["wall_s"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(
        f"\nsim: {report['wall_s']} s in all; figures in {args.out}, plots in {args.plots}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
