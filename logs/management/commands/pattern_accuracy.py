from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from logs.mining.accuracy import STRUCTURED_SUFFIX, measure_folder


class Command(BaseCommand):
    help = (
        "Measure the template miner's grouping accuracy on Loghub samples: "
        "DIR holds a folder per system with its <System>"
        f"{STRUCTURED_SUFFIX} (or .csv.gz). Each system is mined with a "
        "fresh Drain, in file order, from the Content column."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", metavar="DIR", type=Path)
        parser.add_argument(
            "--timing",
            action="store_true",
            help=(
                "Also report lines per CPU second (one core): tokenize() and "
                "learn() over each file, then tokenize() and lookup() over it "
                "again once every template is known."
            ),
        )

    def handle(self, *args, folder: Path, timing: bool = False, **options):
        if not folder.is_dir():
            raise CommandError(f"Folder {folder} not found.")
        results = measure_folder(folder, timing=timing)
        if not results:
            raise CommandError(
                f"No system folder with a *{STRUCTURED_SUFFIX} file found in {folder}."
            )
        header = "| system | lines | templates found | true templates | accuracy |"
        rule = "|---|---:|---:|---:|---:|"
        if timing:
            header += " learn lines/s | lookup lines/s |"
            rule += "---:|---:|"
        self.stdout.write(header)
        self.stdout.write(rule)
        for result in results:
            row = (
                f"| {result.system} | {result.lines} | {result.templates_found} "
                f"| {result.true_templates} | {result.accuracy:.3f} |"
            )
            if timing:
                learn_rate = result.lines / result.learn_seconds
                lookup_rate = result.lines / (result.lookup_seconds or float("inf"))
                row += f" {learn_rate:,.0f} | {lookup_rate:,.0f} |"
            self.stdout.write(row)
        self._write_summary(results, timing)

    def _write_summary(self, results, timing):
        average = sum(r.accuracy for r in results) / len(results)
        lowest = min(results, key=lambda r: r.accuracy)
        self.stdout.write(
            f"\nAverage accuracy over {len(results)} systems: {average:.3f} "
            f"(lowest {lowest.system}, {lowest.accuracy:.3f})"
        )
        if timing:
            lines = sum(r.lines for r in results)
            learn = sum(r.learn_seconds for r in results)
            lookup = sum(r.lookup_seconds or 0.0 for r in results)
            self.stdout.write(
                f"All {lines} lines: {lines / learn:,.0f} lines/s to learn, "
                f"{lines / lookup:,.0f} lines/s to look up (CPU time)"
            )
