"""Programs over a device mesh: which mesh axes a collective spans, and the collectives set against
``jax.experimental.roofline``'s interconnect estimate."""
