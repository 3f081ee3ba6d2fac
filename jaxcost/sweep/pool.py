"""Worker processes for a sweep: each configuration runs in a worker, so that one past its time limit is
killed (``timeout``) and one that crashes the process (``crashed``) costs only itself; the sweep goes on
with a fresh worker. No signals are delivered inside the compiler.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

#: How long a worker may take to start (import JAX, open its device) before the sweep gives up.
SECONDS_TO_START = 300.0
SECONDS_LONGEST_WAIT = 3600.0


class WorkerError(OSError):
    """A worker process could not start: the sweep cannot run here (the command line says so, status 1)."""


@dataclass(frozen=True)
class Setup:
    """How one worker is started: environment variables to add, and the cores it may use (all when None)."""

    environment: dict[str, str] = field(default_factory=dict)
    cores: tuple[int, ...] | None = None


@dataclass
class Task:
    """One configuration to run: its key and what the worker needs."""

    key: str
    payload: dict[str, Any]


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    stdin: IO[bytes]
    stdout: IO[bytes]
    stderr: IO[bytes]
    environment: dict[str, Any] | None = None
    task: Task | None = None
    seconds_started: float = 0.0
    buffer: bytes = b""
    lines: list[bytes] = field(default_factory=list)

    def send(self, task: Task) -> None:
        self.task = task
        self.seconds_started = time.monotonic()
        try:
            self.stdin.write((json.dumps(task.payload) + "\n").encode())
            self.stdin.flush()
        except BrokenPipeError:  # it died since it said it was ready: its end of output tells the rest
            pass

    def read(self) -> bool:
        """Take in what the worker wrote; False at the end of its output (it exited)."""
        data = os.read(self.stdout.fileno(), 1 << 16)
        if not data:
            return False
        self.buffer += data
        *complete, self.buffer = self.buffer.split(b"\n")
        self.lines.extend(line for line in complete if line.strip())
        return True

    def answer(self, fields: dict[str, Any]) -> tuple[Task, dict[str, Any]]:
        """The task in hand and its record: ``fields``, where it ran, and how long it took."""
        task, self.task = self.task, None
        if task is None or self.environment is None:
            raise RuntimeError("a sweep worker answered with no task in hand")
        # a record compiled for a target says the target's platform and device kind, not the worker's
        return task, {**self.environment, **fields, "seconds": time.monotonic() - self.seconds_started}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.stdin, self.stdout, self.stderr):
            try:
                stream.close()
            except OSError:  # a pipe whose reader is gone
                pass

    def last_words(self) -> str:
        """The last line the worker wrote to stderr."""
        self.stderr.seek(0)
        lines = [line.strip() for line in self.stderr.read().decode(errors="replace").splitlines() if line.strip()]
        return lines[-1][:300] if lines else ""


def _nothing_to_run(environment: dict[str, Any]) -> list[Task]:
    """``Pool.prepare`` until ``Pool.run`` is given the real one: no tasks."""
    return []


def _death(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"killed by {name}{hint}"
    return f"exited with status {returncode}"


class Pool:
    """A worker per ``Setup`` (its environment additions, a device to use, its cores)."""

    def __init__(self, setups: list[Setup], seconds_limit: float | None = None):
        self.setups = setups
        self.seconds_limit = seconds_limit
        self.selector = selectors.DefaultSelector()
        self.workers: list[_Worker | None] = [None] * len(setups)
        #: What is left to run, last first; None until the first worker says where it runs.
        self.pending: list[Task] | None = None
        self.prepare: Callable[[dict[str, Any]], list[Task]] = _nothing_to_run

    def _start(self, slot: int) -> _Worker:
        stderr = tempfile.TemporaryFile()
        setup = self.setups[slot]
        command = [sys.executable, "-m", "jaxcost.sweep.worker"]
        if setup.cores is not None:
            command += ["--cores", ",".join(map(str, setup.cores))]
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                   start_new_session=True, env={**os.environ, **setup.environment})
        if process.stdin is None or process.stdout is None:  # never: both are pipes
            process.kill()
            raise WorkerError("a sweep worker started without its pipes")
        worker = _Worker(process, process.stdin, process.stdout, stderr, seconds_started=time.monotonic())
        self.selector.register(worker.stdout, selectors.EVENT_READ, slot)
        self.workers[slot] = worker
        return worker

    def _worker(self, slot: int) -> _Worker:
        """The worker in ``slot``, which must have one (it was started and is not yet retired)."""
        worker = self.workers[slot]
        if worker is None:
            raise RuntimeError(f"no sweep worker in slot {slot}")
        return worker

    def _retire(self, slot: int) -> None:
        worker = self.workers[slot]
        if worker is not None:
            self.selector.unregister(worker.stdout)
            worker.stop()
            self.workers[slot] = None

    def close(self) -> None:
        for slot in range(len(self.workers)):
            self._retire(slot)
        self.selector.close()

    def run(self, prepare: Callable[[dict[str, Any]], list[Task]]) -> Iterator[tuple[Task, dict[str, Any]]]:
        """Each task with its record, as they finish. The tasks are ``prepare(environment)``, asked once the
        first worker has started and said where it runs (versions, device), so that the workers start
        while the tasks are worked out. A record always has ``status``; the environment is added to it."""
        self.prepare = prepare
        try:
            for slot in range(len(self.workers)):
                self._start(slot)
            while any(self.workers):
                yield from self._collect()
        finally:
            self.close()

    def _collect(self) -> Iterator[tuple[Task, dict[str, Any]]]:
        """Wait for answers, deaths and expired limits; yield what finished."""
        for key, _ in self.selector.select(timeout=self._seconds_to_wait()):
            slot = key.data
            worker = self._worker(slot)
            alive = worker.read()
            answers = []
            for line in worker.lines:
                message = json.loads(line)
                if "ready" in message:
                    worker.environment = message["ready"]
                    if self.pending is None:
                        self.pending = list(reversed(self.prepare(worker.environment)))
                else:
                    answers.append(worker.answer(message))
            worker.lines.clear()
            if alive:
                self._feed(slot)  # before the answers are written: the worker need not wait for that
            yield from answers
            if not alive:
                yield from self._died(slot)
        yield from self._expired()

    def _feed(self, slot: int) -> None:
        """Give an idle, ready worker the next task, or retire it when there is none left."""
        worker = self._worker(slot)
        if worker.task is None and worker.environment is not None:
            if self.pending:
                worker.send(self.pending.pop())
            else:
                self._retire(slot)

    def _seconds_to_wait(self) -> float | None:
        deadlines = [worker.seconds_started + limit for worker in self.workers if worker is not None
                     for limit in [self._limit(worker)] if limit is not None]
        # woken at least hourly: the selector cannot wait for a limit of weeks in one go
        return min(max(0.0, min(deadlines) - time.monotonic()), SECONDS_LONGEST_WAIT) if deadlines else None

    def _limit(self, worker: _Worker) -> float | None:
        if worker.environment is None:
            return SECONDS_TO_START
        return self.seconds_limit if worker.task is not None else None

    def _died(self, slot: int) -> Iterator[tuple[Task, dict[str, Any]]]:
        worker = self._worker(slot)
        worker.process.wait()
        words = worker.last_words()
        if worker.environment is None:
            self.close()
            raise WorkerError(f"a sweep worker could not start: {_death(worker.process.returncode)}"
                              + (f": {words}" if words else ""))
        self._retire(slot)
        if worker.task is not None:
            reason = f"crashed: {_death(worker.process.returncode)}" + (f"; last words: {words}" if words else "")
            yield worker.answer({"status": "crashed", "reason": reason})
        if self.pending:
            self._start(slot)

    def _expired(self) -> Iterator[tuple[Task, dict[str, Any]]]:
        now = time.monotonic()
        for slot, worker in enumerate(self.workers):
            limit = None if worker is None else self._limit(worker)
            if worker is None or limit is None or now - worker.seconds_started < limit:
                continue
            if worker.environment is None:
                self.close()
                raise WorkerError(f"a sweep worker did not start within {SECONDS_TO_START:.0f} s")
            self._retire(slot)
            yield worker.answer({"status": "timeout", "reason": f"timeout: over {self.seconds_limit:g} s"})
            if self.pending:
                self._start(slot)
