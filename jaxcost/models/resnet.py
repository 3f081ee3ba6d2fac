"""ResNet-50 as a Flax linen module: the torchvision "v1.5" layout (stride in the 3x3 conv) and the original.

Convolutions have no bias and are followed by batch norm; the 7x7 stem pads 3, the 3x3 max pool pads 1.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxcost.models.mobilenet import ConvBN, classify

#: ResNet-50's stages: (bottleneck width, blocks, first stride).
RESNET50_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), with a projection shortcut when the shape changes."""

    width: int
    stride: int
    stride_in_3x3: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Any, train: bool = False) -> Any:
        first, middle = (1, self.stride) if self.stride_in_3x3 else (self.stride, 1)
        y = ConvBN(self.width, 1, first, dtype=self.dtype, name="reduce")(x, train)
        y = ConvBN(self.width, 3, middle, dtype=self.dtype, name="conv3x3")(y, train)
        y = ConvBN(4 * self.width, 1, activation="none", dtype=self.dtype, name="expand")(y, train)
        if self.stride != 1 or x.shape[-1] != 4 * self.width:
            x = ConvBN(4 * self.width, 1, self.stride, activation="none", dtype=self.dtype, name="shortcut")(x, train)
        return nn.relu(y + x)


class ResNet50(nn.Module):
    """ResNet-50; ``v1_5=True`` is torchvision's layout (25,557,032 params), False the original paper's."""

    v1_5: bool = True
    num_classes: int = 1000
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Any, train: bool = False) -> Any:
        x = ConvBN(64, 7, 2, dtype=self.dtype, name="stem")(x, train)
        x = nn.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
        for stage, (width, blocks, stride) in enumerate(RESNET50_STAGES):
            for block in range(blocks):
                x = Bottleneck(width, stride if block == 0 else 1, self.v1_5, dtype=self.dtype,
                               name=f"stage{stage + 1}_block{block}")(x, train)
        return classify(x, self.num_classes, self.dtype)
