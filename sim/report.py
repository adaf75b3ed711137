"""The figures as Markdown tables: printed by `make bench-sim` and pasted into sim/README.md."""

from __future__ import annotations

from typing import Any

__all__ = ["cost_table", "policy_table", "sweep_table", "targets_table"]

_COLUMNS = (
    ("policy", "policy"),
    ("p50 s", "p50_s"),
    ("p95 s", "p95_s"),
    ("p99 s", "p99_s"),
    ("peak workers", "peak_workers"),
    ("instance-s", "instance_seconds_billed"),
    ("EC2 $", "ec2_usd"),
    ("EC2 $/M photos", "ec2_usd_per_million"),
    ("RunInstances (throttled)", "run_calls"),
    ("DescribeInstances", "describe_instances_calls"),
    ("back to zero s", "back_to_zero_s"),
    ("unfinished", "unfinished_jobs"),
)


def policy_table(policies: dict[str, dict[str, Any]]) -> str:
    rows = ["| " + " | ".join(title for title, _ in _COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for name, figures in policies.items():
        cells = {
            **figures,
            "policy": name,
            "run_calls": f"{figures['run_instances_calls']} ({figures['run_instances_throttled']})",
        }
        rows.append("| " + " | ".join(_cell(cells.get(key)) for _, key in _COLUMNS) + " |")
    return "\n".join(rows)


def cost_table(cost: dict[str, Any]) -> str:
    standard = cost["STANDARD"]["usd_per_million_photos"]
    express = cost["EXPRESS"]["usd_per_million_photos"]
    lines = sorted(set(standard) | set(express), key=lambda k: (k == "total", k))
    rows = ["| price line | Standard $/M photos | Express $/M photos |", "|---|---|---|"]
    for line in lines:
        rows.append(f"| {line} | {_cell(standard.get(line))} | {_cell(express.get(line))} |")
    return "\n".join(rows)


def targets_table(targets: dict[str, dict[str, Any]]) -> str:
    rows = ["| target | met | figure |", "|---|---|---|"]
    rows += [
        f"| {name} | {'yes' if t['met'] else 'NO'} | {t['figure']} |" for name, t in targets.items()
    ]
    return "\n".join(rows)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def sweep_table(table: dict[str, dict[str, dict[str, Any]]]) -> str:
    scenarios = list(next(iter(table.values())))
    rows = [
        "| value | "
        + " | ".join(f"{s}: p95 s / billed ÷ engine / back to zero s" for s in scenarios)
        + " |",
        "|---|" + "---|" * len(scenarios),
    ]
    for value, by_scenario in table.items():
        cells = [
            f"{_cell(f['p95_s'])} / {_cell(f['billed_per_engine_time'])} / "
            f"{_cell(f['back_to_zero_s'])}"
            for f in by_scenario.values()
        ]
        rows.append(f"| {value} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
