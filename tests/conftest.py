"""Test-wide setup.

Four host CPU devices so multi-device code (sharding, per-device runners) is
exercised on CPU. XLA reads the flag only when jax initialises its backend,
so it is set here, before any test module imports jax.
"""

import os

_FLAG = "--xla_force_host_platform_device_count=4"
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
