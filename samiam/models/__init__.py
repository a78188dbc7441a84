"""Model registry, download, device choice and builders.

Importing this package installs the torchvision op shim first (see ``compat``), so every
module that needs torchvision, segment_anything or timm should import from here.
"""

from samiam.models.compat import install as _install_torchvision_shim

TORCHVISION_OPS = _install_torchvision_shim()
