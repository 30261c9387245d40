"""JAX's persistent compilation cache for jtrack's programs.

Compiling ``init`` and ``step`` takes tens of seconds on a small CPU; with
the cache a second process start loads the programs instead. The library
never turns it on by itself (``import jtrack`` changes no global JAX
setting): the programs (``jtrack track``, the demo, the runner, pretraining,
ablations) call :func:`enable_compilation_cache` at start unless run with
``--nocompilation_cache``, and library users may call it too.

The folder: ``--compilation_cache_dir``, else ``$JAX_COMPILATION_CACHE_DIR``,
else the per-user cache folder (:func:`default_cache_dir`).
"""

from __future__ import annotations

import os
import sys

ENV = "JAX_COMPILATION_CACHE_DIR"
STORE = "jtrack-executables"  # subfolder of jtrack's own executables (JAX's cache ignores it)


def default_cache_dir() -> str:
    """``$JAX_COMPILATION_CACHE_DIR`` if set, else ``jtrack/jax`` in the
    platform's per-user cache folder: ``$XDG_CACHE_HOME`` or ``~/.cache``
    (Linux), ``~/Library/Caches`` (macOS), ``%LOCALAPPDATA%`` (Windows)."""
    if os.environ.get(ENV):
        return os.environ[ENV]
    if sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Caches")
    elif sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "jtrack", "jax")


def enable_compilation_cache(path: str | None = None) -> str:
    """Turn on JAX's persistent compilation cache in ``path`` (default
    :func:`default_cache_dir`) for this process, for every program however
    small (a cold start compiles dozens of small helpers too), and keep
    jtrack's compiled ``init``/``step`` in its ``jtrack-executables``
    subfolder (:mod:`jtrack.executables`: a later start skips tracing them
    too). Call it before the first compilation. Returns the folder."""
    import jax

    from jtrack import executables

    path = os.path.abspath(os.path.expanduser(path or default_cache_dir()))
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    executables.enable(os.path.join(path, STORE))
    return path


def define_flags(flag_values) -> None:
    """``--[no]compilation_cache`` and ``--compilation_cache_dir`` in an absl
    ``FlagValues`` (each program's own)."""
    from absl import flags

    if "compilation_cache" in flag_values:  # the demo and the runner share absl's FLAGS
        return
    flags.DEFINE_bool("compilation_cache", True, "Keep compiled programs in a persistent "
                      "cache so the next start skips compilation (--nocompilation_cache: off).",
                      flag_values=flag_values)
    flags.DEFINE_string("compilation_cache_dir", None, f"Compilation cache folder (default "
                        f"${ENV}, else {default_cache_dir()}).", flag_values=flag_values)


def enable_from_flags(flag_values) -> str | None:
    """:func:`enable_compilation_cache` as the flags of :func:`define_flags`
    say; returns the folder, or None when off."""
    if not flag_values.compilation_cache:
        import jax

        from jtrack import executables

        jax.config.update("jax_compilation_cache_dir", None)  # even if $JAX_... says otherwise
        executables.disable()
        return None
    return enable_compilation_cache(flag_values.compilation_cache_dir)
