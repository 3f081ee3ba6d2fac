"""One program over a 4-device mesh (data=2 x model=2: a Transformer MLP's training step), costed either by
two processes of 2 CPU devices each joined by ``jax.distributed`` (``python tests/hosts_program.py PORT
PROCESS``: process 0 prints the gathered report as JSON), or by one process of 4 devices
(``python tests/hosts_program.py``)."""

from __future__ import annotations

import json
import os
import sys

DISTRIBUTED = len(sys.argv) == 3
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={2 if DISTRIBUTED else 4}"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402

if DISTRIBUTED:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{sys.argv[1]}", num_processes=2,
                               process_id=int(sys.argv[2]), initialization_timeout=60)

import jax.numpy as jnp  # noqa: E402

from jaxcost.mesh.hosts import gather, local_figures  # noqa: E402
from jaxcost.models.analysis import analyze  # noqa: E402
from jaxcost.models.transformer import Mlp  # noqa: E402

report = analyze(Mlp(256), jax.ShapeDtypeStruct((8, 64), jnp.float32), mode="train", mesh={"data": 2, "model": 2})
if DISTRIBUTED:
    gathered = gather(report.compiler)
    if gathered is not None:
        print(json.dumps({"processes": gathered.processes, "consistent": gathered.consistent, "text": str(gathered)}))
    jax.distributed.shutdown()
else:
    print(json.dumps(local_figures(report.compiler)))
