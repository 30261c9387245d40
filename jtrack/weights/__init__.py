"""Weight files: the shipped pretrained head (:mod:`~jtrack.weights.shipped`),
torch-free .pth reading, pretrained EfficientNet-Lite0, MDNet.

Importing this package is cheap (no scipy, no weight files touched).
"""

from jtrack.weights.efficientnet import (default_backbone, efficientnet_lite0_path,
                                         load_efficientnet_lite0, pretrained_available)
from jtrack.weights.mdnet import load_mdnet, load_mdnet_mat, load_mdnet_pth, merge_params
from jtrack.weights.torch_pickle import (WeightFileError, flatten_state,
                                         load_state_dict, read_pth)
