"""Phase F of the pipeline benchmark: the report of mining off and on."""

from bench.pipeline import DEFAULT_PHASES, parse_phases
from bench.report import format_report, summarize


def run_figures(per_second: float, patterns: int) -> dict:
    return {
        "entries": 30_000,
        "seconds": 30_000 / per_second,
        "per_second": per_second,
        "load_seconds": 9.0,
        "rows": 30_000,
        "duplicate_rows": 0,
        "missing_rows": 0,
        "failed_requests": 0,
        "peak_rss_kib": {"worker": 204_800},
        "cpu_per_1000": {"worker": 0.05},
        "patterns": patterns,
        "pattern_services": 3 if patterns else 0,
        "rows_without_pattern": 0 if patterns else 30_000,
    }


def mining_phase(off: float, on: float) -> dict:
    return {
        "mining": {
            "off": run_figures(off, 0),
            "on": run_figures(on, 120),
            "ratio": on / off,
        }
    }


def test_mining_only_on_request():
    assert "mining" not in DEFAULT_PHASES
    assert parse_phases("F") == ["mining"]
    assert parse_phases("mining,D") == ["pipeline", "mining"]


def test_report_judges_mining_ratio():
    fast, slow = mining_phase(4000, 3600), mining_phase(4000, 2000)

    fast_report = format_report(report_of(fast))
    slow_report = format_report(report_of(slow))

    assert summarize(fast)["mining_ratio"] == 0.9
    assert "F on/off: 0.900 (target >= 0.8) met" in fast_report
    assert "F on/off: 0.500 (target >= 0.8) MISSED" in slow_report
    rows = [line.split() for line in fast_report.splitlines()]
    assert ["F", "mining", "off", "30,000", "7.5", "4,000"] in [row[:6] for row in rows]
    assert ["F", "mining", "on", "30,000", "8.3", "3,600"] in [row[:6] for row in rows]
    assert "F mining on: 120 patterns in 3 services, 0 rows without a pattern" in (
        fast_report
    )


def report_of(phases: dict) -> dict:
    return {
        "run": "test",
        "machine": {"cpus": 2, "cpu_model": "test", "load_average": [0.0]},
        "phases": phases,
        "summary": summarize(phases),
    }
