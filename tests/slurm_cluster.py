"""A single-node SLURM cluster for the tests, from the system's packages (Debian's ``slurm-wlm`` and ``munge``):
munged, slurmctld and slurmd with every file under one temporary folder, each stopped by its own pid; and the
job array docs/clusters.md documents, which the tests run on it.

Commands reach it through ``SLURM_CONF`` (``SlurmCluster.environment``); nothing under /etc is read or changed.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

#: Set (to anything but 0 or empty) where SLURM must run: a missing or unstartable SLURM then fails the tests
#: instead of skipping them (``.ci/run`` installs SLURM and sets it).
REQUIRE = "JAXCOST_REQUIRE_SLURM"
#: Where Debian puts the daemons, searched beside PATH (a user's PATH often lacks the sbin folders).
SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")
DAEMONS = ("munged", "slurmctld", "slurmd")
COMMANDS = ("sbatch", "squeue", "sinfo", "scancel", "scontrol")
SECONDS_TO_START = 60.0
#: Seconds between a job's SIGTERM and its SIGKILL (time limit, scancel); SLURM's default is 30.
SECONDS_KILL_WAIT = 2
#: prctl's option that has the kernel signal a process when the thread that started it dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1
#: The page that documents the job array the tests run.
DOCS = Path(__file__).parents[1] / "docs" / "clusters.md"


class SlurmUnavailable(RuntimeError):
    """SLURM is not installed here, or its daemons cannot start (the message says which, in one line)."""


def documented_script() -> str:
    """The SLURM job array of docs/clusters.md, as written there."""
    blocks = re.findall(r"```bash\n(.*?)```", DOCS.read_text(), re.S)
    scripts = [block for block in blocks if block.startswith("#!/bin/bash\n")]
    assert len(scripts) == 1, "docs/clusters.md should hold one #!/bin/bash script"
    return scripts[0]


def required() -> bool:
    """Whether this run must have SLURM (``JAXCOST_REQUIRE_SLURM``)."""
    return os.environ.get(REQUIRE, "") not in ("", "0")


def find_program(name: str) -> str | None:
    """A SLURM or munge program on PATH or in the sbin folders."""
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))


def check_installed() -> None:
    """Raise SlurmUnavailable naming what is missing: root, or a program."""
    missing = [name for name in DAEMONS + COMMANDS if find_program(name) is None]
    if missing:
        raise SlurmUnavailable(f"SLURM is not installed ({', '.join(missing)} not found; Debian: apt-get install "
                               "slurm-wlm munge)")
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        raise SlurmUnavailable("a test SLURM cluster needs root (its daemons run as SlurmUser=root)")


def _free_ports(count: int) -> list[int]:
    """``count`` different TCP ports free now (a system SLURM may hold the default ones)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def _die_with_the_tests() -> None:
    """In the daemon's child process before exec: the kernel kills it if the test process dies first."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class SlurmCluster:
    """munged, slurmctld and slurmd of one node (this host), configured and logged under ``folder``.

    ``start()`` returns once ``sinfo`` says the node is idle; ``stop()`` cancels what is still queued and
    stops the three daemons it started, by their pids. A context manager does both. ``environment`` is what
    the commands and the jobs get: ``SLURM_CONF``, and ``path_first`` before the rest of PATH.
    """

    def __init__(self, folder: str | os.PathLike, path_first: Sequence[str] = ()):
        self.folder = Path(folder)
        self.conf = self.folder / "slurm.conf"
        self.host = socket.gethostname().split(".")[0]
        self.daemons: dict[str, subprocess.Popen] = {}
        #: How long ``start()`` took; when (``time.monotonic()``) slurmctld was started.
        self.seconds_started = 0.0
        self.controller_started = 0.0
        self.environment = {**os.environ, "SLURM_CONF": str(self.conf),
                            "PATH": os.pathsep.join([*path_first, os.environ.get("PATH", os.defpath)])}
        self.environment.pop("SLURM_JOB_ID", None)  # a test run inside a SLURM job talks to its own cluster

    def __enter__(self) -> SlurmCluster:
        self.start()
        return self

    def __exit__(self, *exception: object) -> None:
        self.stop()

    def start(self) -> None:
        """munged with a new key, then slurmctld and slurmd; SlurmUnavailable, in one line, when they cannot run."""
        check_installed()
        started = time.monotonic()
        for name in ("munge", "state", "spool", "log"):
            (self.folder / name).mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)  # munged refuses a key or socket folder others may write
        key = self.folder / "munge" / "munge.key"
        descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)  # owned by munged's user: us
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(os.urandom(1024))
        munge = self.folder / "munge"
        self._spawn("munged", ["--foreground", "--force",  # --force: its socket is in a folder only root may reach
                               f"--socket={munge / 'munge.socket'}",
                               f"--key-file={key}", f"--pid-file={munge / 'munged.pid'}",
                               f"--log-file={self.folder / 'log' / 'munged.log'}",
                               f"--seed-file={munge / 'munged.seed'}"])
        self._wait_for(lambda: (munge / "munge.socket").exists(), "munged to open its socket", "munged.log")
        self.conf.write_text(self.configuration(munge / "munge.socket"))
        self.controller_started = time.monotonic()
        self._spawn("slurmctld", ["-D", "-i"])
        self._spawn("slurmd", ["-D"])
        self._wait_for(self._idle, "the node to be idle in sinfo", "slurmctld.log", "slurmd.log")
        self.seconds_started = time.monotonic() - started

    def configuration(self, munge_socket: Path) -> str:
        """slurm.conf: this host as the one node, with its cores and memory as ``slurmd -C`` finds them, CPUs
        the consumable resource (several one-CPU tasks at once), root as SlurmUser, and every path here."""
        found = subprocess.run([find_program("slurmd"), "-C"], capture_output=True, text=True)
        node = next((line for line in found.stdout.splitlines() if line.startswith("NodeName=")), "")
        if found.returncode != 0 or not node:
            raise SlurmUnavailable(f"slurmd -C could not describe this node: {found.stderr.strip()[:200]}")
        node = re.sub(r"^NodeName=\S+", f"NodeName={self.host}", node)
        folder = self.folder
        controller_port, node_port = _free_ports(2)
        return "\n".join([
            "ClusterName=jaxcost-tests",
            f"SlurmctldHost={self.host}(127.0.0.1)",  # whether or not this host's name resolves
            f"SlurmctldPort={controller_port}",
            f"SlurmdPort={node_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"AuthInfo=socket={munge_socket}",
            f"StateSaveLocation={folder / 'state'}",
            f"SlurmdSpoolDir={folder / 'spool'}",
            f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
            f"SlurmdPidFile={folder / 'slurmd.pid'}",
            f"SlurmctldLogFile={folder / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={folder / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "SchedulerType=sched/builtin",
            "SchedulerParameters=batch_sched_delay=0",  # a job starts when submitted, not up to 3 s later
            "JobAcctGatherType=jobacct_gather/none",
            "MpiDefault=none",
            "MailProg=/bin/true",
            "ReturnToService=2",
            f"KillWait={SECONDS_KILL_WAIT}",
            f"{node} NodeAddr=127.0.0.1 State=UNKNOWN",
            f"PartitionName=tests Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
            ""])

    def _spawn(self, name: str, arguments: list[str]) -> None:
        """Start a daemon in the foreground (its pid is the one to stop), its output in ``log/NAME.out``."""
        with open(self.folder / "log" / f"{name}.out", "wb") as log:
            self.daemons[name] = subprocess.Popen([find_program(name), *arguments], env=self.environment,
                                                  stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                                  start_new_session=True, preexec_fn=_die_with_the_tests)

    def _wait_for(self, ready: Callable[[], bool], what: str, *logs: str) -> None:
        """Until ``ready()``; SlurmUnavailable, with a daemon's last words, when one exits or time runs out."""
        deadline = time.monotonic() + SECONDS_TO_START
        while time.monotonic() < deadline:
            for name, daemon in self.daemons.items():
                if daemon.poll() is not None:
                    self.stop()
                    raise SlurmUnavailable(f"{name} exited with status {daemon.returncode} while waiting for "
                                           f"{what}: {self._last_words(name, *logs)}")
            if ready():
                return
            time.sleep(0.1)
        words = self._last_words(*logs)
        self.stop()
        raise SlurmUnavailable(f"timed out after {SECONDS_TO_START:.0f} s waiting for {what}: {words}")

    def _last_words(self, *names: str) -> str:
        """The last line of a daemon's output or log, for a one-line reason."""
        for name in names:
            for path in (self.folder / "log" / f"{name}.out", self.folder / "log" / name):
                lines = path.read_text(errors="replace").strip().splitlines() if path.is_file() else []
                if lines:
                    return f"{path.name}: {lines[-1][:300]}"
        return "no log"

    def _idle(self) -> bool:
        result = self.run(["sinfo", "--noheader", "--format=%T"], check=False)
        return result.returncode == 0 and result.stdout.split() == ["idle"]

    def run(self, command: Sequence[str], *, check: bool = True, **options) -> subprocess.CompletedProcess:
        """A SLURM command against this cluster; its output as text."""
        result = subprocess.run([find_program(command[0]) or command[0], *command[1:]], capture_output=True,
                                text=True, env=options.pop("env", self.environment), timeout=60, **options)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: exit status {result.returncode}: {result.stderr.strip()}")
        return result

    def sbatch(self, script: str | os.PathLike, *options: str, cwd: str | os.PathLike,
               environment: dict[str, str] | None = None) -> str:
        """Submit ``script`` from ``cwd`` with sbatch's ``options`` (which override its ``#SBATCH`` lines),
        in ``environment`` (all of it exported to the job); the job's id."""
        result = self.run(["sbatch", "--parsable", "--export=ALL", *options, str(script)], cwd=cwd,
                          env={**self.environment, **(environment or {})})
        return result.stdout.strip().split(";")[0]

    def queued(self, job: str) -> list[str]:
        """The ids of ``job``'s tasks still pending or running."""
        result = self.run(["squeue", "--noheader", "--array", f"--jobs={job}", "--format=%i"], check=False)
        return result.stdout.split() if result.returncode == 0 else []

    def wait(self, job: str, seconds: float = 120.0) -> None:
        """Until every task of ``job`` has ended; TimeoutError past ``seconds``."""
        deadline = time.monotonic() + seconds
        while self.queued(job):
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job} still queued after {seconds:.0f} s: {self.queued(job)}")
            time.sleep(0.25)

    def states(self, job: str) -> dict[str, str]:
        """Each task's state (``COMPLETED``, ``CANCELLED``, ``TIMEOUT``, ...), by its id (``12_3``), for jobs
        that ended within the last minutes (SLURM's MinJobAge)."""
        result = self.run(["scontrol", "--oneliner", "show", "job", job])
        states = {}
        for line in result.stdout.splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            task = fields.get("ArrayTaskId")
            states[f"{fields['ArrayJobId']}_{task}" if task else fields["JobId"]] = fields["JobState"]
        return states

    def stop(self) -> None:
        """Cancel the jobs still queued (their processes are SLURM's), then stop the daemons started here,
        each by its pid: slurmd, slurmctld, munged."""
        if "slurmctld" in self.daemons and self.daemons["slurmctld"].poll() is None:
            self.run(["scancel", "--full", f"--user={os.getuid()}"], check=False)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                queued = self.run(["squeue", "--noheader", "--format=%i"], check=False)
                if queued.returncode != 0 or not queued.stdout.strip():
                    break
                time.sleep(0.2)
        for name in ("slurmd", "slurmctld", "munged"):
            daemon = self.daemons.pop(name, None)
            if daemon is None:
                continue
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()


def main() -> None:
    """Start a cluster in a temporary folder and hold it until Ctrl-C (for trying the tests' cluster by hand)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="slurm-") as folder, SlurmCluster(folder) as cluster:
        print(f"started in {cluster.seconds_started:.1f} s; export SLURM_CONF={cluster.conf}", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    sys.exit(main())
