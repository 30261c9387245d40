"""Test-wide setup.

The suite runs on CPU, also on a machine with a GPU (``JAX_PLATFORMS=cpu``
unless set: the multi-device tests count on four host devices). Four host
CPU devices so multi-device code (sharding, per-device runners) is
exercised on CPU. XLA reads its flags only when jax initialises its
backend, so they are set here, before any test module imports jax; child
processes inherit them.

One persistent compilation cache for the whole run, shared by the pytest
workers and the ``jtrack`` / benchmark child processes they start (each
would otherwise compile the same programs again): JAX reads
``$JAX_COMPILATION_CACHE_DIR`` when imported, the children inherit it.
Tests about the cache itself give their own folder.
"""

import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
_FLAG = "--xla_force_host_platform_device_count=4"
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
# Compiling is most of the suite's time: XLA's cheaper optimisation (a third
# less CPU on tests/test_amortised.py). Every test compares results computed
# under the same flags; speed is measured in benchmarks/, not here.
for _fast in ("--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true"):
    if _fast.split("=")[0] not in os.environ["XLA_FLAGS"]:
        os.environ["XLA_FLAGS"] += " " + _fast

_OWN_CACHE = None
if "PYTEST_XDIST_WORKER" not in os.environ and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    # the controlling process: the workers it starts inherit the variable
    _OWN_CACHE = os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(
        prefix="jtrack-test-xla-cache-")


def pytest_unconfigure(config):
    if _OWN_CACHE and "PYTEST_XDIST_WORKER" not in os.environ:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)
