"""The compiler side, op by op: optimized HLO text parsed (``text``), each instruction costed by the engine
(``engine``) through its opcode's rule (``rules``, with ``convolution``, ``roles``, ``library_calls``, loop trip
counts in ``loops`` and fusion bytes in ``fusions``), whole programs recounted (``program``), XLA's float32
sums reproduced (``xla_sums``) and buffer traffic accounted (``buffers``). No JAX here.
"""
