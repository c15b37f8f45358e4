"""Grouping accuracy of the template miner on the Loghub samples."""

import gzip
import io
import shutil

import pytest
from django.core.management import CommandError, call_command

from logs.mining.accuracy import (
    grouping_accuracy,
    measure_folder,
    read_structured,
    structured_files,
)
from tests.datafiles import data_dir
from tests.loghub import LOGHUB_SYSTEMS

MIN_AVERAGE = 0.90
MIN_SYSTEM = 0.75


def test_grouping_accuracy_counts_exact_groups():
    # Group 1 matches E1 exactly; group 2 mixes E2 and E3, so its 3
    # entries are wrong, and so is E3's entry in group 3.
    predicted = [1, 1, 2, 2, 2, 3]
    truth = ["E1", "E1", "E2", "E2", "E3", "E3"]

    assert grouping_accuracy(predicted, truth) == pytest.approx(2 / 6)


def test_grouping_accuracy_split_group_is_wrong():
    assert grouping_accuracy([1, 2], ["E1", "E1"]) == 0.0


def test_grouping_accuracy_ignores_ids():
    assert grouping_accuracy([7, 7, 3], ["A", "A", "B"]) == 1.0


def test_grouping_accuracy_rejects_length_mismatch():
    with pytest.raises(ValueError, match="2 predicted ids for 1 true ids"):
        grouping_accuracy([1, 2], ["E1"])


def gzip_apache_sample(folder):
    source = data_dir() / "loghub" / "Apache" / "Apache_2k.log_structured.csv"
    (folder / "Apache").mkdir()
    target = folder / "Apache" / "Apache_2k.log_structured.csv.gz"
    with source.open("rb") as plain, gzip.open(target, "wb") as packed:
        shutil.copyfileobj(plain, packed)
    return source, target


def test_structured_files_reads_gzip(tmp_path):
    source, target = gzip_apache_sample(tmp_path)
    (tmp_path / "Empty").mkdir()

    files = structured_files(tmp_path)

    assert files == {"Apache": target}
    assert read_structured(target) == read_structured(source)


def test_command_prints_table(tmp_path):
    gzip_apache_sample(tmp_path)
    output = io.StringIO()

    call_command("pattern_accuracy", str(tmp_path), "--timing", stdout=output)

    lines = output.getvalue().splitlines()
    assert lines[0].startswith("| system | lines | templates found |")
    assert lines[2].startswith("| Apache | 2000 | ")
    assert "Average accuracy over 1 systems" in output.getvalue()
    assert "lines/s to look up" in output.getvalue()


def test_command_rejects_missing_folder(tmp_path):
    with pytest.raises(CommandError, match="not found"):
        call_command("pattern_accuracy", str(tmp_path / "missing"))


def test_command_rejects_folder_without_samples(tmp_path):
    with pytest.raises(CommandError, match="No system folder"):
        call_command("pattern_accuracy", str(tmp_path))


@pytest.fixture(scope="module")
def loghub_accuracy():
    return {r.system: r for r in measure_folder(data_dir() / "loghub")}


def test_loghub_has_every_system(loghub_accuracy):
    assert sorted(loghub_accuracy) == sorted(LOGHUB_SYSTEMS)
    assert all(r.lines == 2000 for r in loghub_accuracy.values())


def test_loghub_average_accuracy(loghub_accuracy):
    average = sum(r.accuracy for r in loghub_accuracy.values()) / len(loghub_accuracy)

    assert average >= MIN_AVERAGE, {s: r.accuracy for s, r in loghub_accuracy.items()}


@pytest.mark.parametrize("system", sorted(LOGHUB_SYSTEMS))
def test_loghub_system_accuracy(loghub_accuracy, system):
    assert loghub_accuracy[system].accuracy >= MIN_SYSTEM
