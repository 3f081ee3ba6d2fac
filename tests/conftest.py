"""Tests that assert what XLA does on the CPU say so with ``@pytest.mark.cpu`` (or a module's ``pytestmark``):
they run with the CPU as JAX's default device, so the suite passes on a machine whose default device is a GPU."""

import jax
import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "cpu: runs with the CPU as JAX's default device (asserts CPU compiler output)")


@pytest.fixture(autouse=True)
def _cpu_when_marked(request):
    if request.node.get_closest_marker("cpu") is None:
        yield
        return
    with jax.default_device(jax.devices("cpu")[0]):
        yield


#: For tests that start a jaxcost process and assert CPU output.
CPU_ONLY_ENVIRONMENT = {"JAX_PLATFORMS": "cpu"}
