"""JAX started without libtpu's probe on stderr. With libtpu installed (the tpu extra) on a machine without a TPU,
the first start of libtpu in a process (JAX's backends, or a TPU target's topology) writes what it did not find to
stderr (``TPU_WORKER_HOSTNAMES``, a ``Source Location Trace``): not the output of a command, script or notebook.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator

#: Whether libtpu may write to stderr (``let_libtpu_write``: the command line's ``--verbose``).
_verbose = False


def libtpu_installed() -> bool:
    """Whether libtpu, which JAX loads for TPUs, is installed (the tpu extra)."""
    return importlib.util.find_spec("libtpu") is not None


@contextlib.contextmanager
def stderr_closed() -> Iterator[None]:
    """The process's stderr sent to the null device inside: its file descriptor, where native libraries write, and
    what Python wrote to it meanwhile. What was written before is flushed first."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def libtpu_quiet() -> Iterator[None]:
    """libtpu's probe kept off stderr inside, where libtpu is installed and ``let_libtpu_write`` (``--verbose``)
    did not let it through; an error it raises is raised as ever."""
    with stderr_closed() if libtpu_installed() and not _verbose else contextlib.nullcontext():
        yield


def let_libtpu_write(verbose: bool) -> None:
    """Whether libtpu may write to stderr from now on (a target's topology made later included): the command line's
    ``--verbose``."""
    global _verbose
    _verbose = verbose


def start_quietly(verbose: bool = False) -> None:
    """Start JAX's backends now, libtpu's probe for a TPU kept off stderr (where libtpu is installed; elsewhere
    nothing is done). Call it before the first use of JAX: once JAX has started it changes nothing. A backend that
    fails says so again when it is used. ``verbose``: start nothing, and let libtpu write from now on (targets too).
    """
    let_libtpu_write(verbose)
    if verbose or not libtpu_installed():
        return
    import jax

    with libtpu_quiet():
        try:
            jax.devices()
        except RuntimeError:
            pass
