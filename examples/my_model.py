"""A model of your own, for ``jaxcost model examples/my_model.py:build --resolution 32``.

jaxcost loads this file, calls ``build()`` (any flax.linen or flax.nnx Module, a linen Module class, or a function
that returns one works), and costs one call of the module on the input the command line describes.
"""

import flax.linen as nn
import jax.numpy as jnp


class Block(nn.Module):
    """Two 3x3 convolutions, the second strided, each followed by a ReLU."""

    features: int

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(self.features, (3, 3))(x))
        return nn.relu(nn.Conv(self.features, (3, 3), strides=(2, 2))(x))


class SmallNet(nn.Module):
    """Two blocks, global average pooling, and a classifier."""

    classes: int = 10

    @nn.compact
    def __call__(self, images):
        x = Block(16)(images)
        x = Block(32)(x)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.classes)(x)


def build() -> SmallNet:
    return SmallNet(classes=10)
