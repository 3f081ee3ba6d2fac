"""MobileNetV1 and MobileNetV2 as Flax linen modules, with width multiplier and any input resolution.

Layouts follow the papers (Howard et al. 2017, Sandler et al. 2018) and torchvision's MobileNetV2:
convolutions without bias, each followed by batch norm; symmetric padding of k // 2.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of `divisor`, never more than 10% below `value` (MobileNetV2's rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvBN(nn.Module):
    """Convolution (no bias), batch norm, then an activation (ReLU, ReLU6 or none)."""

    features: int
    kernel: int = 3
    stride: int = 1
    groups: int = 1
    activation: str = "relu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Any, train: bool = False) -> Any:
        pad = self.kernel // 2
        x = nn.Conv(self.features, (self.kernel, self.kernel), (self.stride, self.stride), ((pad, pad), (pad, pad)),
                    feature_group_count=self.groups, use_bias=False, dtype=self.dtype, param_dtype=self.dtype)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype)(x)
        if self.activation == "relu":
            return nn.relu(x)
        if self.activation == "relu6":
            return jnp.minimum(nn.relu(x), 6.0)
        return x


def classify(x: Any, num_classes: int, dtype: Any) -> Any:
    """Global average pool, then the ``classifier`` Dense layer (inside a module's compact call)."""
    return nn.Dense(num_classes, dtype=dtype, param_dtype=dtype, name="classifier")(jnp.mean(x, axis=(1, 2)))


#: MobileNetV1's depthwise-separable blocks: (pointwise output channels, depthwise stride).
MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
                       (512, 1), (512, 1), (1024, 2), (1024, 1))


class MobileNetV1(nn.Module):
    """MobileNetV1: 3x3 stem, 13 depthwise-separable blocks, global average pool, classifier."""

    alpha: float = 1.0
    num_classes: int = 1000
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Any, train: bool = False) -> Any:
        channels = int(32 * self.alpha)
        x = ConvBN(channels, 3, 2, dtype=self.dtype, name="stem")(x, train)
        for index, (features, stride) in enumerate(MOBILENET_V1_BLOCKS):
            x = ConvBN(channels, 3, stride, groups=channels, dtype=self.dtype, name=f"block{index}_dw")(x, train)
            channels = int(features * self.alpha)
            x = ConvBN(channels, 1, dtype=self.dtype, name=f"block{index}_pw")(x, train)
        return classify(x, self.num_classes, self.dtype)


#: MobileNetV2's inverted residual stages: (expansion t, output channels c, repeats n, first stride s).
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1))


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise (3x3), project (1x1, linear); a residual add when shapes allow."""

    features: int
    stride: int
    expansion: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Any, train: bool = False) -> Any:
        channels = x.shape[-1]
        hidden = channels * self.expansion
        y = x
        if self.expansion != 1:
            y = ConvBN(hidden, 1, activation="relu6", dtype=self.dtype, name="expand")(y, train)
        y = ConvBN(hidden, 3, self.stride, groups=hidden, activation="relu6", dtype=self.dtype, name="depthwise")(
            y, train)
        y = ConvBN(self.features, 1, activation="none", dtype=self.dtype, name="project")(y, train)
        if self.stride == 1 and channels == self.features:
            y = y + x
        return y


class MobileNetV2(nn.Module):
    """MobileNetV2 (torchvision layout): 3x3 stem, 17 inverted residual blocks, 1x1 to 1280, pool, classifier."""

    alpha: float = 1.0
    num_classes: int = 1000
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Any, train: bool = False) -> Any:
        x = ConvBN(make_divisible(32 * self.alpha), 3, 2, activation="relu6", dtype=self.dtype, name="stem")(x, train)
        index = 0
        for expansion, channels, repeats, stride in MOBILENET_V2_STAGES:
            for repeat in range(repeats):
                x = InvertedResidual(make_divisible(channels * self.alpha), stride if repeat == 0 else 1, expansion,
                                     dtype=self.dtype, name=f"block{index}")(x, train)
                index += 1
        last = make_divisible(1280 * max(1.0, self.alpha))
        x = ConvBN(last, 1, activation="relu6", dtype=self.dtype, name="head")(x, train)
        return classify(x, self.num_classes, self.dtype)
