"""A sweep as a SLURM job array: the batch script that runs shard K of N in array task K (the shape
docs/clusters.md documents), the merge command that joins the shards, and its submission to ``sbatch``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: The variable that holds an array task's number, 1 to N here.
TASK = "SLURM_ARRAY_TASK_ID"


def _in_double_quotes(text: str) -> str:
    """``text`` as it is written between double quotes in bash."""
    for special in ("\\", '"', "$", "`"):
        text = text.replace(special, "\\" + special)
    return text


@dataclass(frozen=True)
class JobArray:
    """A sweep of ``grid`` in ``shards`` array tasks, task K writing ``folder/partK`` (with ``out``'s suffix);
    ``options`` are the sweep's other options (``--jobs 4``), ``sbatch_options`` its ``#SBATCH`` lines."""

    grid: str
    shards: int
    out: Path
    options: tuple[str, ...] = ()
    sbatch_options: tuple[str, ...] = ()

    @property
    def folder(self) -> Path:
        """Where the shards' files go: ``out`` without its suffix (``results/`` for ``results.jsonl``)."""
        return self.out.with_suffix("")

    @property
    def prefix(self) -> str:
        """The shards' files before their task number: ``results/part``."""
        return str(self.folder / "part")

    def merge_command(self) -> str:
        """The command that joins the shards into ``out`` once every task has ended."""
        return f"{jaxcost_command()} sweep merge {shlex.quote(self.prefix)}*{self.out.suffix} " \
               f"--out {shlex.quote(str(self.out))}"

    def script(self) -> str:
        """The batch script: ``#SBATCH`` lines, then shard ``$SLURM_ARRAY_TASK_ID/N`` of the grid into its own file."""
        sweep = [jaxcost_command(), "sweep", shlex.quote(self.grid), "--shard", f'"${TASK}/{self.shards}"',
                 "--out", f'"{_in_double_quotes(self.prefix)}${TASK}{self.out.suffix}"',
                 *map(shlex.quote, self.options), "--quiet"]
        return "\n".join([
            "#!/bin/bash",
            f"#SBATCH --job-name=jaxcost-sweep --array=1-{self.shards}",
            *(f"#SBATCH {option}" for option in self.sbatch_options),
            f"mkdir -p {shlex.quote(str(self.folder))}",
            " ".join(sweep),
            f"# afterwards, once: {self.merge_command()}",
            ""])


def check_shards(shards: int) -> None:
    """``--slurm N``: a positive number of shards."""
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(f"--slurm: the number of shards (array tasks) must be a positive integer, got {shards}")


def check_sbatch_option(option: str) -> None:
    """An ``#SBATCH`` line's option: one line that starts with ``-`` (``--time=1:00:00``)."""
    if not option.startswith("-") or "\n" in option or "\r" in option:
        raise ValueError(f"--sbatch-arg: must be one sbatch option such as --time=1:00:00 (written "
                         f"--sbatch-arg=--time=1:00:00), got {option!r}")


def jaxcost_command() -> str:
    """``jaxcost`` where the one on PATH is this one; otherwise this one's full path, so the job runs the same
    jaxcost whatever PATH it gets."""
    here = Path(sys.executable).parent / "jaxcost"
    found = shutil.which("jaxcost")
    if not here.exists() or (found is not None and os.path.realpath(found) == os.path.realpath(here)):
        return "jaxcost"
    return shlex.quote(str(here))


def submit(array: JobArray) -> str:
    """Hand the script to ``sbatch`` (from this folder, with this environment); the job's id. ValueError when
    there is no sbatch here; OSError, with sbatch's reason, when it refuses the job."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise ValueError("--submit: sbatch is not on PATH; print the script without --submit and submit it where "
                         "SLURM is")
    result = subprocess.run([sbatch, "--parsable"], input=array.script(), capture_output=True, text=True)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise OSError(f"sbatch refused the job array: {reason}")
    return result.stdout.strip().split(";")[0]
