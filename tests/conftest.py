"""Tests that assert what XLA does on the CPU say so with ``@pytest.mark.cpu`` (or a module's ``pytestmark``):
they run with the CPU as JAX's default device, so the suite passes on a machine whose default device is a GPU."""

import os

# libtpu (the tpu extra, in the test extra) lets one process at a time load it unless told otherwise; the tests
# start many processes at once (sweep workers, the command line, meshes), none of which uses a TPU
os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")

import jax  # noqa: E402
import pytest  # noqa: E402

from jaxcost.compiler import CompilerCost  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "cpu: runs with the CPU as JAX's default device (asserts CPU compiler output)")


#: For tests that start a jaxcost process and assert CPU output.
CPU_ONLY_ENVIRONMENT = {"JAX_PLATFORMS": "cpu"}


@pytest.fixture(autouse=True)
def _cpu_when_marked(request, monkeypatch):
    """A marked test runs on the CPU, and so does every process it starts (a sweep's workers, the CLI)."""
    if request.node.get_closest_marker("cpu") is None:
        yield
        return
    for name, value in CPU_ONLY_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    with jax.default_device(jax.devices("cpu")[0]):
        yield


@pytest.fixture(autouse=True)
def _nothing_silently_zero(monkeypatch):
    """Every program compiled or replayed in any test: no key XLA reports as non-zero is 0 in the recount
    unless ``unknown`` names why."""
    made: list[CompilerCost] = []
    original = CompilerCost.__init__

    def record(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(CompilerCost, "__init__", record)
    yield
    assert [(compiler.silent_zeros, compiler.recount) for compiler in made if compiler.silent_zeros] == []
