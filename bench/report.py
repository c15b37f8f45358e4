"""The benchmark's printed report and its summary against the targets."""

from collections.abc import Iterator
from typing import Any

# Targets: D/A and D/E in the same run; latency under a steady 1,000/s.
TARGET_D_OVER_A = 0.35
TARGET_D_OVER_E = 25
TARGET_LATENCY_MEDIAN = 1.0
TARGET_LATENCY_P99 = 3.0
# Soak: the consumer's and the worker's RSS may grow by less than this many
# percent from the end of the warm-up to the end of the load.
TARGET_SOAK_GROWTH_PERCENT = 10.0
# Phase F: the pipeline's rate with pattern mining on, over its rate with
# mining off, in the same run.
TARGET_MINING_RATIO = 0.80
PROCESS_ORDER = (
    "client",
    "api",
    "kafka",
    "consumer",
    "redis",
    "worker",
    "postgres",
)


def format_report(report: dict) -> str:
    lines = [
        f"logplatform benchmark, run {report['run']}: "
        f"{report['machine']['cpus']} CPUs, {report['machine']['cpu_model']}, "
        f"load {report['machine']['load_average'][0]:.2f}",
        "",
    ]
    rows = list(phase_rows(report["phases"]))
    header = ["phase", "entries", "seconds", "entries/s"] + list(PROCESS_ORDER)
    lines.append(
        "CPU columns: CPU seconds per 1,000 entries of each process tree; "
        "postgres is the whole server, other databases included."
    )
    lines.extend(format_table(header, rows))
    lines.append("")
    lines.extend(format_details(report["phases"], report["summary"]))
    return "\n".join(lines)


def phase_rows(phases: dict) -> Iterator[list[str]]:
    labels = {
        "copy": "A copy",
        "kafka": "B kafka",
        "pipeline": "D pipeline",
        "steady": "steady",
        "naive": "E naive",
        "soak": "soak",
    }
    for name, figures in phases.items():
        if name == "intake":
            for batch, batch_figures in figures.items():
                yield row(f"C intake x{batch}", batch_figures)
        elif name == "mining":
            yield row("F mining off", figures["off"])
            yield row("F mining on", figures["on"])
        else:
            yield row(labels[name], figures)


def row(label: str, figures: dict) -> list[str]:
    cpu = figures.get("cpu_per_1000", {})
    return [
        label,
        f"{figures['entries']:,}",
        f"{figures['seconds']:.1f}",
        f"{figures['per_second']:,.0f}",
    ] + [f"{cpu[name]:.3f}" if name in cpu else "-" for name in PROCESS_ORDER]


def format_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [
        max(len(line[column]) for line in [header, *rows])
        for column in range(len(header))
    ]

    def render(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [
            cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)
        ]
        return "  ".join([first, *rest])

    return [
        render(header),
        render(["-" * width for width in widths]),
        *map(render, rows),
    ]


def format_details(phases: dict, summary: dict) -> list[str]:
    lines = []
    for batch, figures in phases.get("intake", {}).items():
        median = figures.get("request_median_ms", 0)
        p99 = figures.get("request_p99_ms", 0)
        lines.append(
            f"C intake x{batch}: request median {median:.1f} ms, p99 {p99:.1f} ms, "
            f"{figures['failed_requests']} failed requests"
        )
    for name in ("pipeline", "steady", "soak"):
        if name in phases:
            lines.append(describe_pipeline_run(name, phases[name]))
    if "soak" in phases:
        lines.extend(format_soak_memory(phases["soak"]["memory"]))
    if "mining" in phases:
        lines.extend(format_mining(phases["mining"]))
    if "kafka" in phases:
        kafka = phases["kafka"]
        lines.append(
            f"B kafka: produce {kafka['produce_per_second']:,.0f}/s, "
            f"consume {kafka['consume_per_second']:,.0f}/s, "
            f"{kafka['delivery_errors']} delivery errors"
        )
    if "d_over_a" in summary:
        lines.append(judge("D/A", summary["d_over_a"], TARGET_D_OVER_A, above=True))
    if "d_over_e" in summary:
        lines.append(judge("D/E", summary["d_over_e"], TARGET_D_OVER_E, above=True))
    if "mining_ratio" in summary:
        lines.append(
            judge("F on/off", summary["mining_ratio"], TARGET_MINING_RATIO, True)
        )
    if "steady_latency_median_s" in summary:
        median = summary["steady_latency_median_s"]
        p99 = summary["steady_latency_p99_s"]
        lines.append(judge("steady median s", median, TARGET_LATENCY_MEDIAN, False))
        lines.append(judge("steady p99 s", p99, TARGET_LATENCY_P99, above=False))
    for label, percent in summary.get("soak_growth_percent", {}).items():
        lines.append(
            judge(
                f"soak {label} RSS growth %",
                percent,
                TARGET_SOAK_GROWTH_PERCENT,
                above=False,
            )
        )
    return lines


# The rows of the soak's memory table: process, measure and row label.
SOAK_ROWS = (
    ("consumer", "main_kib", "consumer"),
    ("worker", "main_kib", "worker main"),
    ("worker", "largest_child_kib", "worker largest child"),
    ("worker", "total_kib", "worker sum"),
    ("api", "main_kib", "api main"),
    ("api", "largest_child_kib", "api largest child"),
    ("api", "total_kib", "api sum"),
)


def format_soak_memory(memory: dict) -> list[str]:
    """Return the soak's table of resident sizes, in MiB."""
    warmup = memory["warmup_seconds"]
    header = [
        "soak RSS, MiB",
        f"at {warmup:.0f}s",
        "peak",
        "end",
        "growth",
        "growth %",
        "trend MiB/h",
    ]
    rows = []
    for process, measure, label in SOAK_ROWS:
        figures = memory["processes"].get(process, {}).get(measure)
        if figures is not None:
            rows.append([label, *soak_cells(figures)])
    return [
        f"soak memory: VmRSS every {memory['sample_seconds']:.0f}s. Growth runs "
        f"from the first sample at {warmup:.0f}s of load or later to the last "
        "sample, after the drain; the trend is the least-squares slope of the "
        "samples after the warm-up. A sum counts the pages that processes "
        "share once per process.",
        *format_table(header, rows),
    ]


def soak_cells(figures: dict) -> list[str]:
    def mib(kib: float | None) -> str:
        return "-" if kib is None else f"{kib / 1024:.1f}"

    percent = figures["growth_percent"]
    trend = figures["trend_mib_per_hour"]
    return [
        mib(figures["after_warmup_kib"]),
        mib(figures["peak_kib"]),
        mib(figures["end_kib"]),
        mib(figures["growth_kib"]),
        "-" if percent is None else f"{percent:+.1f}",
        "-" if trend is None else f"{trend:+.1f}",
    ]


def format_mining(mining: dict) -> list[str]:
    lines = []
    for label in ("off", "on"):
        figures = mining[label]
        lines.append(describe_pipeline_run(f"F mining {label}", figures))
        lines.append(
            f"F mining {label}: {figures['patterns']:,} patterns in "
            f"{figures['pattern_services']} services, "
            f"{figures['rows_without_pattern']:,} rows without a pattern"
        )
    return lines


def describe_pipeline_run(name: str, figures: dict) -> str:
    latency = (
        f"latency median {figures['latency_median_s']:.3f}s, "
        f"p99 {figures['latency_p99_s']:.3f}s ({figures['samples']} samples)"
        if figures.get("samples")
        else "no latency samples"
    )
    peaks = ", ".join(
        f"{process} {kib / 1024:.0f} MiB"
        for process, kib in figures["peak_rss_kib"].items()
        if kib is not None
    )
    return (
        f"{name}: {figures['entries']:,} accepted in {figures['load_seconds']:.1f}s, "
        f"{figures['rows']:,} rows, {figures['duplicate_rows']} duplicate, "
        f"{figures['missing_rows']} missing, {figures['failed_requests']} failed "
        f"requests; {latency}; peak RSS {peaks}"
    )


def judge(label: str, value: float, target: float, above: bool) -> str:
    met = value >= target if above else value < target
    sign = ">=" if above else "<"
    verdict = "met" if met else "MISSED"
    return f"{label}: {value:.3f} (target {sign} {target}) {verdict}"


def summarize(phases: dict) -> dict:
    summary: dict[str, Any] = {}
    rate = {name: figures.get("per_second") for name, figures in phases.items()}
    if "mining" in phases:
        summary["mining_ratio"] = phases["mining"]["ratio"]
    if rate.get("pipeline") and rate.get("copy"):
        summary["d_over_a"] = rate["pipeline"] / rate["copy"]
    if rate.get("pipeline") and rate.get("naive"):
        summary["d_over_e"] = rate["pipeline"] / rate["naive"]
    steady = phases.get("steady", {})
    if "latency_median_s" in steady:
        summary["steady_latency_median_s"] = steady["latency_median_s"]
        summary["steady_latency_p99_s"] = steady["latency_p99_s"]
    if "soak" in phases:
        summary["soak_growth_percent"] = soak_growth(phases["soak"]["memory"])
    return summary


def soak_growth(memory: dict) -> dict[str, float]:
    """Return the RSS growth in percent of the consumer and the worker."""
    growth = {}
    for process, measure, label in SOAK_ROWS:
        if process not in ("consumer", "worker") or measure == "total_kib":
            continue
        figures = memory["processes"].get(process, {}).get(measure)
        if figures is not None and figures["growth_percent"] is not None:
            growth[label] = figures["growth_percent"]
    return growth
