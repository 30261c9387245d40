"""Test-wide setup.

Four host CPU devices so multi-device code (sharding, per-device runners) is
exercised on CPU. XLA reads the flag only when jax initialises its backend,
so it is set here, before any test module imports jax.

One persistent compilation cache for the whole run, shared by the pytest
workers and the ``jtrack`` / benchmark child processes they start (each
would otherwise compile the same programs again): JAX reads
``$JAX_COMPILATION_CACHE_DIR`` when imported, the children inherit it.
Tests about the cache itself give their own folder.
"""

import os
import shutil
import tempfile

_FLAG = "--xla_force_host_platform_device_count=4"
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()

_OWN_CACHE = None
if "PYTEST_XDIST_WORKER" not in os.environ and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    # the controlling process: the workers it starts inherit the variable
    _OWN_CACHE = os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(
        prefix="jtrack-test-xla-cache-")


def pytest_unconfigure(config):
    if _OWN_CACHE and "PYTEST_XDIST_WORKER" not in os.environ:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)
