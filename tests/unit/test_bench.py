"""The parts of the benchmark that run without services."""

import random
from pathlib import Path

import orjson
import pytest

from bench import measure
from bench.entries import (
    MAX_ENTRY_BYTES,
    MIN_ENTRY_BYTES,
    SampleLine,
    load_lines,
    make_batch,
    make_entry,
)
from bench.pipeline import copy_line, parse_phases
from bench.stack import cpu_per_thousand
from tests.datafiles import data_dir

TIMESTAMP = "2026-01-02T03:04:05.678Z"


def test_entry_sizes_from_loghub():
    lines = load_lines(data_dir())
    entries = make_batch(lines, range(5000), random.Random(7))
    sizes = [len(orjson.dumps(entry)) for entry in entries]

    assert min(sizes) >= MIN_ENTRY_BYTES
    assert max(sizes) <= MAX_ENTRY_BYTES
    assert len({entry["service_name"] for entry in entries}) >= 10
    assert [entry["metadata"]["seq"] for entry in entries] == list(range(5000))


def test_entry_long_line_is_cut():
    line = SampleLine("hdfs", "INFO " + "block blk_1 added " * 100)
    entry = make_entry(line, 3, random.Random(1), TIMESTAMP)
    size = len(orjson.dumps(entry))

    assert MIN_ENTRY_BYTES <= size <= MAX_ENTRY_BYTES
    assert line.text.startswith(entry["message"])
    assert entry["message"]


def test_entry_escaped_characters_fit():
    # Quotes, backslashes and control characters grow once JSON-escaped.
    line = SampleLine("windows", 'ERROR path "C:\\temp\\x"\t\x01' * 40)
    for seed in range(50):
        entry = make_entry(line, seed, random.Random(seed), TIMESTAMP)
        size = len(orjson.dumps(entry))
        assert MIN_ENTRY_BYTES <= size <= MAX_ENTRY_BYTES, (seed, size)


def test_entry_short_line_is_padded():
    line = SampleLine("openssh", "WARN x")
    entry = make_entry(line, 12, random.Random(2), TIMESTAMP)

    assert MIN_ENTRY_BYTES <= len(orjson.dumps(entry)) <= MAX_ENTRY_BYTES
    assert entry["message"] == "WARN x"
    assert entry["level"] == "WARN"
    assert entry["metadata"]["trace_id"]


def test_entry_level_defaults_to_info():
    entry = make_entry(SampleLine("linux", "session opened"), 0, random.Random(), "")

    assert entry["level"] == "INFO"


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([5.0], 0.5, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.5),
        ([4.0, 1.0, 3.0, 2.0], 0.0, 1.0),
        ([4.0, 1.0, 3.0, 2.0], 1.0, 4.0),
        (list(range(1, 101)), 0.99, 99.01),
        ([10.0, 20.0], 0.25, 12.5),
    ],
)
def test_percentile_interpolates(values, fraction, expected):
    assert measure.percentile(values, fraction) == pytest.approx(expected)


def test_percentile_rejects_empty_and_bad_fraction():
    with pytest.raises(ValueError):
        measure.percentile([], 0.5)
    with pytest.raises(ValueError):
        measure.percentile([1.0], 1.5)


# A /proc/<pid>/stat line whose command name contains spaces and ")".
STAT_LINE = (
    "4242 (celery: a) b) S 4200 4242 4242 0 -1 4194560 2000 0 0 0 "
    "150 75 30 12 20 0 3 0 100 200000000 5000 18446744073709551615"
)


def test_parse_stat_odd_command_name():
    stat = measure.parse_stat(STAT_LINE)

    assert stat.pid == 4242
    assert stat.ppid == 4200
    assert (stat.utime, stat.stime, stat.cutime, stat.cstime) == (150, 75, 30, 12)
    assert stat.ticks == 267


def test_parse_status_reads_kib():
    status = "Name:\tpython\nVmHWM:\t   51234 kB\nVmRSS:\t 40000 kB\n"

    assert measure.parse_status_kib(status, "VmHWM") == 51234
    assert measure.parse_status_kib(status, "VmSwap") is None


def _write_proc(root: Path, pid: int, ppid: int, ticks: tuple, hwm: int) -> None:
    folder = root / str(pid)
    folder.mkdir()
    utime, stime, cutime, cstime = ticks
    (folder / "stat").write_text(
        f"{pid} (proc {pid}) S {ppid} 0 0 0 -1 0 0 0 0 0 "
        f"{utime} {stime} {cutime} {cstime} 20 0 1 0"
    )
    (folder / "status").write_text(f"Name:\tproc\nVmHWM:\t{hwm} kB\n")


def test_tree_cpu_and_peak_rss(tmp_path):
    _write_proc(tmp_path, 10, 1, (100, 50, 25, 25), 1000)
    _write_proc(tmp_path, 11, 10, (200, 100, 0, 0), 3000)
    _write_proc(tmp_path, 12, 11, (10, 10, 0, 0), 2000)
    _write_proc(tmp_path, 20, 1, (999, 999, 0, 0), 9000)
    (tmp_path / "self").mkdir()
    stats = measure.all_stats(tmp_path)

    assert sorted(measure.process_tree(10, stats)) == [10, 11, 12]
    assert measure.tree_cpu_seconds(10, stats) == pytest.approx(
        520 / measure.CLOCK_TICKS
    )
    assert measure.tree_cpu_seconds(99, stats) is None
    assert measure.peak_rss_kib(10, tmp_path) == 3000
    assert measure.peak_rss_kib(99, tmp_path) is None


def test_cpu_per_thousand_entries():
    before = {"api": 10.0, "kafka": 5.0, "gone": 1.0}
    after = {"api": 14.0, "kafka": 6.0, "new": 3.0}

    per_thousand = cpu_per_thousand(before, after, 2000)

    assert per_thousand == pytest.approx({"api": 2.0, "kafka": 0.5})
    assert cpu_per_thousand(before, after, 0) == {}


def test_copy_line_escapes_text_format():
    entry = {
        "id": "0193a000-0000-7000-8000-000000000001",
        "timestamp": "2026-01-02T03:04:05+00:00",
        "received_at": "2026-01-02T03:04:06+00:00",
        "level": "ERROR",
        "service_name": "svc",
        "message": "a\tb\nc\\d",
        "metadata": {"k": "v\\"},
    }

    fields = copy_line(entry).decode().rstrip("\n").split("\t")

    assert len(fields) == 7
    assert fields[3] == "40"
    assert fields[5] == "a\\tb\\nc\\\\d"
    assert fields[6] == '{"k":"v\\\\\\\\"}'


def test_parse_phases_names_and_letters():
    assert parse_phases("E,a,steady") == ["copy", "steady", "naive"]
    with pytest.raises(SystemExit):
        parse_phases("copy,warp")
