"""Results files: one record per configuration run, appended whole (``.jsonl`` lines or ``.csv`` rows with
plain cells), read back with their types, and shard files merged without duplicates.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not on a Unix: appends are still whole, two new CSV writers may both write a header
    fcntl = None

#: The measurement's figures a timed record keeps.
MEASURED_FIELDS = ("seconds_median", "spread", "flops_per_second", "bytes_per_second", "compute_utilization",
                   "memory_utilization", "bound", "overhead_share", "seconds_device", "speed_of_light", "precision")
#: Where a record was made.
ENVIRONMENT_FIELDS = ("jaxcost", "jax", "jaxlib", "platform", "device_kind")
COLUMNS = ("key", "layer", "mode", "timing", "config", "status", "reason", "kind", "output_shape", "params", "macs",
           "textbook_macs", "flops", "bytes_accessed", "compiler_flops", "compiler_bytes", "xla_flops", "xla_bytes",
           "verdict", *MEASURED_FIELDS, "seconds", *ENVIRONMENT_FIELDS)
#: CSV columns read back as text whatever they look like; the others are numbers, booleans or JSON.
TEXT_COLUMNS = frozenset(("key", "layer", "mode", "status", "reason", "kind", "verdict", "bound", "precision",
                          *ENVIRONMENT_FIELDS))
SUFFIXES = (".jsonl", ".csv")


def check_path(path: str | os.PathLike, argument: str) -> Path:
    """A results path: ``.jsonl`` or ``.csv``."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise ValueError(f"{argument}: results go to a .jsonl or .csv file, got {str(path)!r}")
    return path


def _cell(value: Any) -> str:
    """A plain CSV cell: empty for missing, lists and tables as JSON, everything else as Python writes it."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def _value(column: str, cell: str) -> Any:
    """A CSV cell read back with its type."""
    if cell == "":
        return None
    if column in TEXT_COLUMNS:
        return cell
    if cell in ("True", "False"):
        return cell == "True"
    if cell[0] in "[{":
        return json.loads(cell)
    for number in (int, float):
        try:
            return number(cell)
        except ValueError:
            pass
    return cell


class ResultsFile:
    """Append-only records, one JSON line (``.jsonl``) or CSV row (``.csv``) per configuration run.

    Each record is written with a single ``os.write`` on an ``O_APPEND`` descriptor and synced, so
    a sweep killed at any moment leaves whole records only; a torn last line from a crash of the
    machine itself is dropped on the next run. A configuration run again (``--retry-failed``) gets a
    new record: its last one is its result.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.csv = self.path.suffix == ".csv"

    def repair(self) -> None:
        """Drop an incomplete last line, and refuse a CSV file whose columns are not this version's."""
        if not self.path.exists():
            return
        text = self.path.read_text()
        if text and not text.endswith("\n"):
            text = text[:text.rfind("\n") + 1]
            self.path.write_text(text)
        if self.csv and text and text.splitlines()[0] != ",".join(COLUMNS):
            raise ValueError(f"--out: {str(self.path)!r} has other columns than this jaxcost writes; write to a new "
                             "file (jaxcost sweep merge OLD --out NEW converts it)")

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record, in the order written."""
        if not self.path.exists():
            return
        if self.csv:
            with self.path.open(newline="") as handle:
                for row in csv.DictReader(handle):
                    yield {name: _value(name, cell) for name, cell in row.items() if name is not None}
            return
        for line in self.path.read_text().splitlines():
            if line.strip():
                yield json.loads(line)

    def latest(self) -> dict[str, dict[str, Any]]:
        """Each configuration's result: its last record, by key."""
        return {record["key"]: record for record in self.records() if record.get("key")}

    def append(self, record: dict[str, Any]) -> None:
        """Write one record whole, and sync it. The file is locked meanwhile, so that of two sweeps
        starting one CSV file only one writes the header."""
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            data = self._text([record], header=os.fstat(descriptor).st_size == 0)
            os.write(descriptor, data.encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)  # and the lock with it

    def replace(self, records: Iterable[dict[str, Any]]) -> None:
        """Write the file anew, atomically (a temporary file renamed over it)."""
        data = self._text(records, header=True)
        folder = self.path.parent if str(self.path.parent) else Path(".")
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _text(self, records: Iterable[dict[str, Any]], header: bool) -> str:
        if not self.csv:
            return "".join(json.dumps(record) + "\n" for record in records)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if header:
            writer.writerow(COLUMNS)
        for record in records:
            writer.writerow([_cell(record.get(name)) for name in COLUMNS])
        return buffer.getvalue()


@dataclass(frozen=True)
class Merged:
    """What ``merge`` wrote: how many records, and how many duplicates it dropped."""

    path: Path
    records: int
    duplicates: int

    def __str__(self) -> str:
        return f"{self.path}: {self.records} records ({self.duplicates} duplicates dropped)"


def merge(sources: Iterable[str | os.PathLike], out: str | os.PathLike) -> Merged:
    """One results file from several (shards, or runs on different machines): one record per key.

    A key recorded more than once keeps an ``ok`` record over a failed one, and otherwise its last
    record (later files after earlier ones). ``out`` may be one of the sources; it is written atomically.
    """
    sources = [Path(source) for source in sources]
    if not sources:
        raise ValueError("files: name the results files to merge")
    by_key: dict[str, dict[str, Any]] = {}
    total = 0
    for source in sources:
        check_path(source, "files")
        if not source.exists():
            raise ValueError(f"files: no such results file {str(source)!r}")
        for record in ResultsFile(source).records():
            total += 1
            key = record.get("key")
            if not key:
                raise ValueError(f"files: {str(source)!r} holds a record without a key; is it a sweep's results?")
            kept = by_key.get(key)
            if kept is None or record.get("status") == "ok" or kept.get("status") != "ok":
                by_key.pop(key, None)
                by_key[key] = record
    target = ResultsFile(check_path(out, "--out"))
    target.replace(by_key.values())
    return Merged(target.path, len(by_key), total - len(by_key))
