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
from types import ModuleType
from typing import Any

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # not on a Unix: appends are still whole, two new CSV writers may both write a header
    fcntl = None

#: The measurement's figures a timed record keeps.
MEASURED_FIELDS = ("seconds_median", "spread", "flops_per_second", "bytes_per_second", "compute_utilization",
                   "memory_utilization", "bound", "overhead_share", "seconds_device", "speed_of_light", "precision")
#: Where a record was made.
ENVIRONMENT_FIELDS = ("jaxcost", "jax", "jaxlib", "platform", "device_kind")
COLUMNS = ("key", "layer", "mode", "timing", "target", "config", "status", "reason", "kind", "output_shape", "params",
           "macs", "textbook_macs", "flops", "bytes_accessed", "compiler_flops", "compiler_bytes", "xla_flops",
           "xla_bytes", "verdict", *MEASURED_FIELDS, "seconds", *ENVIRONMENT_FIELDS)
#: CSV columns read back as text whatever they look like; the others are numbers, booleans or JSON.
TEXT_COLUMNS = frozenset(("key", "layer", "mode", "target", "status", "reason", "kind", "verdict", "bound", "precision",
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

    def repair(self, argument: str = "results") -> None:
        """Check that the file is a sweep's results (refusing anything else, untouched, in an error that
        names ``argument``), then drop an incomplete last line left by a crash mid-write."""
        if not self.path.exists():
            return
        text = self._text_read()
        lines = text.splitlines()
        if lines and not self._is_results(lines[0]):
            kind = "columns than this jaxcost writes" if self.csv else "lines than a sweep's records"
            raise ValueError(f"{argument}: {str(self.path)!r} holds other {kind}; give a new file or a sweep's "
                             "results (jaxcost sweep merge OLD --out NEW converts older results)")
        if text and not text.endswith("\n"):
            self.path.write_text(text[:text.rfind("\n") + 1])

    def _is_results(self, first_line: str) -> bool:
        if self.csv:
            return first_line == ",".join(COLUMNS)
        try:
            record = json.loads(first_line)
        except ValueError:
            return False
        return isinstance(record, dict) and "key" in record

    def _text_read(self) -> str:
        try:
            return self.path.read_text()
        except UnicodeDecodeError:
            raise ValueError(f"files: {str(self.path)!r} is not text, so not a sweep's results") from None

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record, in the order written; an incomplete last line (a crash mid-write) is left out."""
        if not self.path.exists():
            return
        text = self._text_read()
        if text and not text.endswith("\n"):
            text = text[:text.rfind("\n") + 1]
        if self.csv:
            for row in csv.DictReader(io.StringIO(text, newline="")):
                yield {name: _value(name, cell) for name, cell in row.items() if name is not None}
            return
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                raise ValueError(f"files: {str(self.path)!r} line {number} is not a sweep's record (a JSON object)")
            yield record

    def latest(self) -> dict[str, dict[str, Any]]:
        """Each configuration's result, by key (see ``results_by_key``)."""
        return results_by_key(self.records())

    def append(self, record: dict[str, Any]) -> None:
        """Write one record whole, and sync it. The file is locked meanwhile, so that of two sweeps
        starting one CSV file only one writes the header."""
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
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


def results_by_key(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each key's result among records in the order written: its last ``ok`` record, or its last record
    when none succeeded. A success is never undone by a later failure (two writers, merged files)."""
    by_key: dict[str, dict[str, Any]] = {}
    for record in records:
        key = record.get("key")
        if not key:
            continue
        kept = by_key.get(key)
        if kept is None or record.get("status") == "ok" or kept.get("status") != "ok":
            by_key.pop(key, None)  # the result takes its place at the end: files keep their order
            by_key[key] = record
    return by_key


def check_folder(path: Path, argument: str) -> None:
    """Fail now, naming the argument, when the folder ``path`` goes in does not exist or cannot be written."""
    if not path.parent.is_dir():
        raise ValueError(f"{argument}: the folder {str(path.parent)!r} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise ValueError(f"{argument}: cannot write in the folder {str(path.parent)!r}")


def check_writable(path: Path, argument: str) -> None:
    """Fail now, naming the argument, when ``path`` cannot be written (before any work is done)."""
    if not path.exists():  # a file there already may be appended to in a folder that cannot be written
        check_folder(path, argument)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    except OSError as error:
        raise ValueError(f"{argument}: cannot write {str(path)!r}: {error.strerror}") from None


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
    paths = [Path(source) for source in sources]
    if not paths:
        raise ValueError("files: name the results files to merge")
    records = []
    for source in paths:
        check_path(source, "files")
        if not source.exists():
            raise ValueError(f"files: no such results file {str(source)!r}")
        for record in ResultsFile(source).records():
            if not record.get("key"):
                raise ValueError(f"files: {str(source)!r} holds a record without a key; is it a sweep's results?")
            records.append(record)
    target = ResultsFile(check_path(out, "--out"))
    check_folder(target.path, "--out")
    merged = results_by_key(records)
    target.replace(merged.values())
    return Merged(target.path, len(merged), len(records) - len(merged))
