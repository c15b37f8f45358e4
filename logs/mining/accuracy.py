"""Loghub grouping accuracy of the miner.

Loghub's structured CSVs give each line's message (Content) and the id of
its true template (EventId). An entry is grouped right when the entries
that the miner put with it are exactly those that share its EventId, and
the grouping accuracy is the share of entries grouped right (Zhu et al.,
"Tools and Benchmarks for Automated Log Parsing", ICSE 2019).
"""

import csv
import gzip
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from logs.mining.drain import Drain
from logs.mining.masking import tokenize

STRUCTURED_SUFFIX = "_2k.log_structured.csv"


@dataclass
class SystemAccuracy:
    system: str
    lines: int
    templates_found: int
    true_templates: int
    accuracy: float
    # CPU seconds of this process in tokenize() and learn() over the file,
    # so other work on the machine does not count.
    learn_seconds: float
    # CPU seconds in tokenize() and lookup() over the file once more, when
    # every template is known; None unless timing was requested.
    lookup_seconds: float | None = None


def grouping_accuracy(predicted: list[int], truth: list[str]) -> float:
    """Return the share of entries whose predicted group equals their true group.

    A predicted group is right when all its entries share one true id and
    no other entry has that id, so it suffices to compare the sizes of the
    predicted group, the true group and their intersection.
    """
    if len(predicted) != len(truth):
        raise ValueError(
            f"got {len(predicted)} predicted ids for {len(truth)} true ids"
        )
    if not truth:
        return 0.0
    predicted_sizes = Counter(predicted)
    true_sizes = Counter(truth)
    pair_sizes = Counter(zip(predicted, truth, strict=True))
    right = 0
    for (group, event), size in pair_sizes.items():
        if predicted_sizes[group] == size and true_sizes[event] == size:
            right += size
    return right / len(truth)


def read_structured(path: Path) -> tuple[list[str], list[str]]:
    """Return the Content and EventId columns of a structured CSV, plain or gzipped."""
    if path.name.endswith(".gz"):
        handle = gzip.open(path, "rt", encoding="utf-8", newline="")
    else:
        handle = path.open(encoding="utf-8", newline="")
    with handle:
        rows = list(csv.DictReader(handle))
    return [row["Content"] for row in rows], [row["EventId"] for row in rows]


def mine(messages: list[str], drain: Drain | None = None) -> list[int]:
    """Learn the messages in order and return the cluster id of each."""
    drain = drain if drain is not None else Drain()
    next_id = max((c.id for c in drain.clusters()), default=0) + 1
    ids = []
    for message in messages:
        cluster, _ = drain.learn(tokenize(message), new_id=next_id)
        if cluster.id == next_id:
            next_id += 1
        ids.append(cluster.id)
    return ids


def measure_system(system: str, path: Path, timing: bool = False) -> SystemAccuracy:
    """Mine one structured CSV with a fresh Drain and score the grouping.

    With timing, the messages are tokenized and looked up once more in the
    learned Drain, which times the path of lines whose template is known.
    """
    messages, truth = read_structured(path)
    drain = Drain()
    started = time.process_time()
    predicted = mine(messages, drain)
    learn_seconds = time.process_time() - started
    lookup_seconds = None
    if timing:
        started = time.process_time()
        for message in messages:
            drain.lookup(tokenize(message))
        lookup_seconds = time.process_time() - started
    return SystemAccuracy(
        system=system,
        lines=len(messages),
        templates_found=len(set(predicted)),
        true_templates=len(set(truth)),
        accuracy=grouping_accuracy(predicted, truth),
        learn_seconds=learn_seconds,
        lookup_seconds=lookup_seconds,
    )


def structured_files(folder: Path) -> dict[str, Path]:
    """Map each system folder under folder to its structured CSV, plain or gzipped."""
    found = {}
    for system_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        name = system_dir.name + STRUCTURED_SUFFIX
        for candidate in (system_dir / name, system_dir / (name + ".gz")):
            if candidate.is_file():
                found[system_dir.name] = candidate
                break
    return found


def measure_folder(folder: Path, timing: bool = False) -> list[SystemAccuracy]:
    """Measure every system folder under folder that contains a structured CSV."""
    return [
        measure_system(system, path, timing)
        for system, path in structured_files(folder).items()
    ]
