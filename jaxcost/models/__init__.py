"""Whole models: the reference zoo with its published figures (``zoo``) and any model costed layer by
layer from one compile (``analysis``).
"""

from jaxcost.models.zoo import ZOO, MobileNetV1, MobileNetV2, Published, ResNet50, ZooModel, build

__all__ = ["ZOO", "MobileNetV1", "MobileNetV2", "Published", "ResNet50", "ZooModel", "build"]
