"""Sweeps over layer configurations that scale and survive: one record per configuration, appended as it
finishes, computed in worker processes (time limits and crashes cost one configuration), resumable,
and shardable across machines (a SLURM job array runs one shard a task: ``JobArray``).

A grid file (JSON, TOML, or YAML with PyYAML installed) names the layer type, the base spec and the axes::

    {"layer": "conv", "base": {"input_shape": [1, 56, 56, 64], "features": 128, "kernel_size": 3},
     "axes": {"features": [32, 64, 128], "groups": [1, 4], "dtype": ["float32", "bfloat16"]},
     "timing": false, "mode": "forward", "seconds_limit": 60}

Axes are spec fields, or the shorthands ``batch``, ``size`` (every spatial dimension), ``channels``
(input channels), ``kernel``, ``stride``, ``groups`` and, for depthwise layers, ``multiplier``.
"""

from jaxcost.sweep.grid import Grid, check_grid, load_grid, parse_shard, shard_keys, spec_of
from jaxcost.sweep.plot import plot_axis
from jaxcost.sweep.results import MEASURED_FIELDS, Merged, ResultsFile, merge
from jaxcost.sweep.run import SweepSummary, run_sweep, same_records, usable_cores
from jaxcost.sweep.slurm import JobArray

__all__ = ["MEASURED_FIELDS", "Grid", "JobArray", "Merged", "ResultsFile", "SweepSummary", "check_grid", "shard_keys",
           "load_grid", "merge", "parse_shard", "plot_axis", "run_sweep", "same_records", "spec_of", "usable_cores"]
