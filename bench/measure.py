"""Percentiles and per-process CPU time and memory read from /proc (Linux)."""

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the `fraction` quantile (0 to 1), interpolating between ranks.

    This is the "linear" method of numpy.percentile. Raises ValueError for
    an empty sequence or a fraction outside 0 to 1.
    """
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction {fraction} is outside 0 to 1")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * fraction
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/<pid>/stat that the benchmark uses, in clock ticks."""

    pid: int
    ppid: int
    utime: int
    stime: int
    cutime: int
    cstime: int

    @property
    def ticks(self) -> int:
        """CPU time of the process and of its children that it has reaped."""
        return self.utime + self.stime + self.cutime + self.cstime


def parse_stat(text: str) -> ProcStat:
    """Parse the contents of /proc/<pid>/stat.

    The command name in field 2 is in parentheses and may itself contain
    spaces and parentheses, so the fields are counted from its last ")".
    """
    head, _, rest = text.rpartition(")")
    pid = int(head.split("(", 1)[0])
    fields = rest.split()
    # fields[0] is field 3 of proc(5), the state.
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        utime=int(fields[11]),
        stime=int(fields[12]),
        cutime=int(fields[13]),
        cstime=int(fields[14]),
    )


def parse_status_kib(text: str, field: str) -> int | None:
    """Return a "Name:   1234 kB" value of /proc/<pid>/status, in KiB."""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    return None


def read_stat(pid: int, proc: Path = PROC) -> ProcStat | None:
    try:
        return parse_stat((proc / str(pid) / "stat").read_text())
    except (FileNotFoundError, ProcessLookupError):
        return None


def all_stats(proc: Path = PROC) -> dict[int, ProcStat]:
    stats = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name), proc)
            if stat is not None:
                stats[stat.pid] = stat
    return stats


def process_tree(pid: int, stats: dict[int, ProcStat]) -> list[int]:
    """Return `pid` and its live descendants found in `stats`."""
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    tree, stack = [], [pid]
    while stack:
        current = stack.pop()
        if current in stats:
            tree.append(current)
            stack.extend(children.get(current, []))
    return tree


def tree_cpu_seconds(pid: int, stats: dict[int, ProcStat]) -> float | None:
    """Return the CPU seconds of a process tree, or None if `pid` is gone.

    Each live process counts its own time and that of the children it has
    reaped, so a PostgreSQL backend that has exited still counts through
    the postmaster.
    """
    tree = process_tree(pid, stats)
    if not tree:
        return None
    return sum(stats[member].ticks for member in tree) / CLOCK_TICKS


@dataclass(frozen=True)
class TreeRss:
    """Resident sizes (VmRSS) in a process tree, in KiB.

    Each process counts every page it has resident, so pages that a forked
    child still shares with its parent count in both, and `total_kib`
    overstates the memory the tree uses.
    """

    main_kib: int
    largest_child_kib: int | None
    total_kib: int
    children: int


def tree_rss(pid: int, proc: Path = PROC) -> TreeRss | None:
    """Return the current VmRSS of `pid` and of its descendants.

    Returns None when `pid` is gone. A descendant that exits while the tree
    is read is left out.
    """
    sizes = {}
    for member in process_tree(pid, all_stats(proc)):
        try:
            status = (proc / str(member) / "status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        value = parse_status_kib(status, "VmRSS")
        if value is not None:
            sizes[member] = value
    if pid not in sizes:
        return None
    children = [size for member, size in sizes.items() if member != pid]
    return TreeRss(
        main_kib=sizes[pid],
        largest_child_kib=max(children) if children else None,
        total_kib=sum(sizes.values()),
        children=len(children),
    )


def peak_rss_kib(pid: int, proc: Path = PROC) -> int | None:
    """Return the largest VmHWM (peak resident size) in a process tree."""
    peaks = []
    for member in process_tree(pid, all_stats(proc)):
        try:
            status = (proc / str(member) / "status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        value = parse_status_kib(status, "VmHWM")
        if value is not None:
            peaks.append(value)
    return max(peaks) if peaks else None
