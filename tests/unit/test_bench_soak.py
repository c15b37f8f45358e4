"""The soak phase's memory figures, computed without services."""

from pathlib import Path

import pytest

from bench import measure
from bench.pipeline import DEFAULT_PHASES, parse_args, parse_phases
from bench.report import format_details, summarize
from bench.soak import growth, memory_figures, memory_series


def _write_proc(root: Path, pid: int, ppid: int, rss: int | None) -> None:
    folder = root / str(pid)
    folder.mkdir()
    (folder / "stat").write_text(
        f"{pid} (proc {pid}) S {ppid} 0 0 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0"
    )
    status = "Name:\tproc\nVmHWM:\t99999 kB\n"
    if rss is not None:
        status += f"VmRSS:\t{rss} kB\n"
    (folder / "status").write_text(status)


def test_tree_rss_main_children_sum(tmp_path):
    _write_proc(tmp_path, 10, 1, 1000)
    _write_proc(tmp_path, 11, 10, 3000)
    _write_proc(tmp_path, 12, 10, 2000)
    _write_proc(tmp_path, 13, 11, 500)
    _write_proc(tmp_path, 20, 1, 9000)

    sizes = measure.tree_rss(10, tmp_path)

    assert sizes.main_kib == 1000
    assert sizes.largest_child_kib == 3000
    assert sizes.total_kib == 6500
    assert sizes.children == 3


def test_tree_rss_single_and_gone(tmp_path):
    _write_proc(tmp_path, 10, 1, 1000)
    # A kernel thread or zombie has no VmRSS line.
    _write_proc(tmp_path, 30, 1, None)

    alone = measure.tree_rss(10, tmp_path)

    assert alone.largest_child_kib is None
    assert alone.total_kib == 1000
    assert alone.children == 0
    assert measure.tree_rss(99, tmp_path) is None
    assert measure.tree_rss(30, tmp_path) is None


def test_growth_from_first_point_after_warmup():
    points = [(-1.0, 500), (0.0, 800), (50.0, 1200), (60.5, 1000), (120.0, 1100)]

    figures = growth(points, warmup_seconds=60)

    assert figures["after_warmup_kib"] == 1000
    assert figures["peak_kib"] == 1200
    assert figures["end_kib"] == 1100
    assert figures["growth_kib"] == 100
    assert figures["growth_percent"] == pytest.approx(10.0)
    # 100 KiB in 59.5 s, fitted through the two points after the warm-up.
    assert figures["trend_mib_per_hour"] == pytest.approx(100 / 59.5 * 3600 / 1024)


def test_growth_trend_ignores_one_high_end_sample():
    points = [(60.0 + 10 * i, 1000 + i) for i in range(50)] + [(560.0, 3000)]

    figures = growth(points, warmup_seconds=60)

    assert figures["growth_percent"] == pytest.approx(200.0)
    assert 0 < figures["trend_mib_per_hour"] < 5


def test_growth_shrinking_is_negative():
    figures = growth([(60.0, 2000), (600.0, 1500)], warmup_seconds=60)

    assert figures["growth_kib"] == -500
    assert figures["growth_percent"] == pytest.approx(-25.0)


def test_growth_without_point_after_warmup():
    figures = growth([(0.0, 800), (30.0, 900)], warmup_seconds=60)

    assert figures["after_warmup_kib"] is None
    assert figures["growth_kib"] is None
    assert figures["growth_percent"] is None
    assert figures["trend_mib_per_hour"] is None
    assert figures["peak_kib"] == 900
    assert figures["end_kib"] == 900


def _sizes(main: int, child: int | None = None) -> dict:
    return {
        "main_kib": main,
        "largest_child_kib": child,
        "total_kib": main + (child or 0),
        "children": 0 if child is None else 1,
    }


def test_memory_figures_per_process_and_measure():
    samples = [
        {"time": 1000.0, "processes": {"consumer": _sizes(100), "worker": None}},
        {
            "time": 1070.0,
            "processes": {"consumer": _sizes(200), "worker": _sizes(300, 50)},
        },
        {
            "time": 1600.0,
            "processes": {"consumer": _sizes(250), "worker": _sizes(310, 80)},
        },
    ]

    series = memory_series(samples, started=1001.0)
    figures = memory_figures(series, warmup_seconds=60)

    assert [sample["elapsed_s"] for sample in series] == [-1.0, 69.0, 599.0]
    assert set(figures) == {"consumer", "worker"}
    assert "largest_child_kib" not in figures["consumer"]
    assert figures["consumer"]["main_kib"]["after_warmup_kib"] == 200
    assert figures["consumer"]["main_kib"]["growth_percent"] == pytest.approx(25.0)
    assert figures["worker"]["main_kib"]["growth_kib"] == 10
    assert figures["worker"]["largest_child_kib"]["growth_kib"] == 30
    assert figures["worker"]["total_kib"]["end_kib"] == 390


def _soak_phase(consumer_growth: int) -> dict:
    series = [
        {"elapsed_s": 60.0, "processes": {"consumer": _sizes(1000)}},
        {"elapsed_s": 600.0, "processes": {"consumer": _sizes(1000 + consumer_growth)}},
    ]
    return {
        "entries": 1000,
        "load_seconds": 600.0,
        "rows": 1000,
        "duplicate_rows": 0,
        "missing_rows": 0,
        "failed_requests": 0,
        "samples": 0,
        "peak_rss_kib": {"consumer": 2048},
        "memory": {
            "sample_seconds": 10,
            "warmup_seconds": 60,
            "processes": memory_figures(series, 60),
        },
    }


def test_report_judges_soak_growth():
    flat = {"soak": _soak_phase(50)}
    grown = {"soak": _soak_phase(200)}

    flat_lines = format_details(flat, summarize(flat))
    grown_lines = format_details(grown, summarize(grown))

    assert summarize(grown)["soak_growth_percent"] == {"consumer": pytest.approx(20)}
    assert "soak consumer RSS growth %: 5.000 (target < 10.0) met" in flat_lines
    assert "soak consumer RSS growth %: 20.000 (target < 10.0) MISSED" in grown_lines
    table_row = next(line for line in grown_lines if line.startswith("consumer "))
    assert table_row.split() == [
        "consumer",
        "1.0",
        "1.2",
        "1.2",
        "0.2",
        "+20.0",
        "+1.3",
    ]


def test_soak_only_on_request():
    assert "soak" not in DEFAULT_PHASES
    assert "soak" not in parse_args([]).phases
    assert parse_args(["--phases", "soak"]).phases == ["soak"]
    assert parse_phases("soak,D,steady") == ["pipeline", "steady", "soak"]
