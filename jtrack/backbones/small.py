"""``small_cnn``: a tiny random-init trunk for quick runs on a CPU.

Two strided convs, (…, H, W, 3) in [0, 255] -> (…, H/8, W/8, 32). It has no
pretrained weights and tracks far worse than ``efficientnet_lite0``; it
exists so that examples (docs/api.md), tests of the tools around the tracker
and first experiments with the API compile and run in seconds.
"""

from __future__ import annotations

import flax.linen as nn

from jtrack.nets import Backbone, linen_backbone, register_backbone


class SmallCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = x / 127.5 - 1.0
        x = nn.relu(nn.Conv(16, (4, 4), strides=(4, 4), padding="VALID", name="conv1")(x))
        return nn.relu(nn.Conv(32, (2, 2), strides=(2, 2), padding="VALID", name="conv2")(x))


def small_cnn() -> Backbone:
    # Cell 0 sees region pixels [0, 8): its centre is 4.0 (pixel i covers [i, i+1)).
    return linen_backbone("small_cnn", SmallCNN(), stride=8.0, offset=4.0, channels=32)


register_backbone("small_cnn", small_cnn)
