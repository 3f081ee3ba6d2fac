"""The compiler side, op by op: optimized HLO text parsed (``text``), each opcode costed (``rules``,
``convolution``, ``roles``, ``library_calls``), whole programs recounted (``program``), XLA's float32
sums reproduced (``xla_sums``) and buffer traffic accounted (``buffers``). No JAX here.
"""
