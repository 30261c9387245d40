"""Compiled ``init``/``step`` programs kept on disk between process starts.

JAX's persistent compilation cache skips XLA compilation on a second start,
but every start still traces and lowers the programs to find them in it
(seconds for ``init`` and ``step`` on a small CPU). With a store folder set
(:func:`enable`; :func:`jtrack.enable_compilation_cache` sets one inside
the cache folder), the jitted cores wrapped by :func:`stored_jit` save their
compiled executable there on first use and a later process loads it
directly: no tracing, no lowering, no compilation.

An executable is reused only for the same jtrack source, jax/jaxlib
version, backend and device, ``XLA_FLAGS``, static arguments (the
``TrackerConfig``) and argument shapes/dtypes; anything else (tracers under
the caller's ``jit``/``vmap``, arrays on other devices, a backbone
registered outside jtrack) goes through plain ``jax.jit``, as does a
program XLA cannot serialise (a ``.unstorable`` marker records it). The
files are pickles of XLA executables: like JAX's own cache, load only a
folder you trust.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import json
import os
import pickle
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

import jax
import numpy as np

_folder: str | None = None
_MISSING = object()
# What the previous process used, loaded ahead in threads: path -> Future.
_prefetched: dict[str, Future] = {}
_previous: list[str] = []  # file names the previous process used, in order
_used: list[str] = []  # file names this process used, in order of first use


def enable(path: str) -> str:
    """Keep compiled programs in ``path`` (created) from now on; returns it.

    The programs the previous process used there start loading at once in
    background threads (seconds on a small CPU), while the caller reads weights and
    frames and runs the first programs."""
    global _folder
    path = os.path.abspath(os.path.expanduser(path))
    os.makedirs(path, exist_ok=True)
    _folder = path
    _used.clear()
    _previous[:] = _read_manifest(path)
    _prefetched.clear()
    # Two loaders: the big init and step programs load side by side.
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="jtrack-prefetch")
    if jax.default_backend() == "cpu":
        pool.submit(_prepare_cpu_kernels)
    for name in _previous:
        _prefetched[os.path.join(path, name)] = pool.submit(_read, os.path.join(path, name))
    pool.shutdown(wait=False)  # the queue still runs; joined at exit
    return path


def _manifest(path: str) -> str:
    """The file naming what a process used in ``path``, per environment."""
    env = hashlib.sha256(_environment().encode()).hexdigest()[:16]
    return os.path.join(path, f"used-{env}.json")


def _read_manifest(path: str) -> list[str]:
    """Names of the programs the previous process used in ``path`` (those
    still there), in order of use."""
    try:
        with open(_manifest(path)) as f:
            names = json.load(f)
    except (OSError, ValueError):
        return []
    if not isinstance(names, list):
        return []
    return [n for n in names if isinstance(n, str) and os.sep not in n
            and os.path.exists(os.path.join(path, n))]


def _read(path: str):
    """The executable stored at ``path``, loaded onto this process's device."""
    from jax.experimental import serialize_executable as se

    with open(path, "rb") as f:
        blob, in_tree, out_tree = pickle.load(f)
    return se.deserialize_and_load(blob, in_tree, out_tree,
                                   execution_devices=jax.local_devices()[:1])


def _note_used(path: str) -> None:
    """Add ``path`` to this process's manifest (rewritten only when the
    list of what is used grows past what the previous process used)."""
    name = os.path.basename(path)
    if name in _used:
        return
    _used.append(name)
    if _previous[:len(_used)] == _used:
        return
    from jtrack.data.results import atomic_write_bytes

    try:
        atomic_write_bytes(_manifest(os.path.dirname(path)), json.dumps(_used).encode())
    except OSError:
        pass  # a read-only folder: no prefetch next time


def disable() -> None:
    """Stop using the store (programs already loaded in this process stay)."""
    global _folder
    _folder = None


def folder() -> str | None:
    """The store folder, or None when off."""
    return _folder


@functools.lru_cache(maxsize=1)
def _environment() -> str:
    """What an executable depends on besides its arguments: jtrack's source
    (every .py file of the package), jax/jaxlib, the device, XLA flags."""
    import jaxlib

    h = hashlib.sha256()
    root = os.path.dirname(os.path.abspath(__file__))
    for dirpath, dirnames, files in sorted(os.walk(root)):
        dirnames.sort()
        for f in sorted(files):
            if f.endswith(".py"):
                with open(os.path.join(dirpath, f), "rb") as fh:
                    h.update(f.encode() + b"\0" + fh.read())
    dev = jax.local_devices()[0]
    return repr((h.hexdigest(), jax.__version__, jaxlib.__version__, dev.platform,
                 dev.device_kind, dev.client.platform_version, jax.local_device_count(),
                 os.environ.get("XLA_FLAGS", ""), jax.config.jax_enable_x64,
                 jax.config.jax_default_matmul_precision))


def _static_ok(value: Any) -> bool:
    """Static arguments whose repr names them across processes: jtrack
    configs whose backbone is jtrack's own, None, plain scalars and tuples."""
    from jtrack.config import TrackerConfig

    if isinstance(value, TrackerConfig):
        from jtrack import nets

        # Who registered the backbone: code outside jtrack may change between
        # runs without changing jtrack's source hash.
        factory = nets._BACKBONES.get(value.backbone)
        factory = getattr(factory, "func", factory)  # functools.partial
        return (getattr(factory, "__module__", None) or "").startswith("jtrack.")
    if isinstance(value, tuple):
        return all(_static_ok(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def _aval(x: Any, device) -> tuple | None:
    """(shape, dtype, weak) of a leaf the store may take, else None. Runs for
    every leaf (66 for a TrackerState) when the previous call's program does
    not fit: kept to attribute reads."""
    if isinstance(x, jax.Array):
        if isinstance(x, jax.core.Tracer):
            return None
        if device is not None and x.sharding.device_set != {device}:
            return None
        return x.shape, x.dtype, getattr(x, "weak_type", False)  # PRNG keys have none
    if isinstance(x, np.ndarray | np.generic):
        return x.shape, x.dtype, False
    if isinstance(x, bool | int | float):
        return (), type(x).__name__, True
    return None


_kernels_lock = threading.Lock()
_kernels_ready = False


def _prepare_cpu_kernels() -> None:
    """jaxlib fills its LAPACK kernel table when it first lowers a linear
    algebra op; a loaded executable lowers nothing, so without this its
    first solve would call through an empty table (a segfault on CPU).
    Once per process, whichever thread comes first."""
    global _kernels_ready
    with _kernels_lock:
        if _kernels_ready:
            return
        try:
            from jax._src.lib import lapack
            lapack._lapack.initialize()
        except (ImportError, AttributeError):  # another jaxlib layout: nothing to prepare
            pass
        _kernels_ready = True


def _compile_fresh(jitted, args: tuple):
    """Compile without JAX's persistent cache, and say whether the result
    may be stored: an executable that cache loaded serialises without some
    of its kernels (jax 0.10 on CPU: "Function wrapped_slice not found" once
    loaded again), so the store keeps only freshly compiled ones. Returns
    (compiled, fresh)."""
    from jax.experimental.compilation_cache import compilation_cache as cc

    hits = []
    listener = lambda event, **_: hits.append(event) if event.endswith("cache_hits") else None  # noqa: E731
    before = jax.config.jax_enable_compilation_cache
    log = logging.getLogger("jax._src.compilation_cache")  # reset_cache logs at INFO
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    jax.config.update("jax_enable_compilation_cache", False)
    cc.reset_cache()  # JAX decides once per process whether its cache is on: decide again
    jax.monitoring.register_event_listener(listener)
    try:
        compiled = jitted.lower(*args).compile()
    finally:
        jax.monitoring.unregister_event_listener(listener)
        jax.config.update("jax_enable_compilation_cache", before)
        cc.reset_cache()
        log.setLevel(level)
    return compiled, not hits


class _Stored:
    """``jax.jit(fun, ...)`` whose compiled executables go through the store."""

    def __init__(self, fun: Callable, static_argnums: tuple[int, ...],
                 donate_argnums: tuple[int, ...]):
        self._jit = jax.jit(fun, static_argnums=static_argnums, donate_argnums=donate_argnums)
        self._name = f"{fun.__module__}.{fun.__qualname__}"
        self._static = frozenset(static_argnums)
        self._loaded: dict = {}  # (statics, treedef, avals) -> jax.stages.Compiled
        self._last: dict = {}  # statics -> the Compiled used last with them
        self._keyable: dict = {}  # statics -> whether the store may key on them
        functools.update_wrapper(self, fun)

    def __getattr__(self, name: str):  # lower, eval_shape, _cache_size, ...
        return getattr(self._jit, name)

    def __call__(self, *args, **kwargs):
        if _folder is None or kwargs:
            return self._jit(*args, **kwargs)
        statics = tuple(a for i, a in enumerate(args) if i in self._static)
        ok = self._keyable.get(statics)
        if ok is None:
            ok = self._keyable[statics] = _static_ok(statics)
        if not ok:  # statics the store cannot name (e.g. a user's backbone): plain jit
            return self._jit(*args)
        dynamic = tuple(a for i, a in enumerate(args) if i not in self._static)
        last = self._last.get(statics)
        if last is not None:  # the usual case: the program of the previous call
            try:
                return last(*dynamic)
            except (TypeError, ValueError):  # raised before running: other shapes,
                pass  # devices or tracers; find (or build) the matching program
        leaves, tree = jax.tree.flatten(dynamic)
        devices = jax.local_devices()  # a multi-process run: this process's own
        device = devices[0] if len(devices) > 1 else None  # one device: nothing to check
        avals = tuple(_aval(x, device) for x in leaves)
        if None in avals:
            return self._jit(*args)
        sig = (statics, tree, avals)
        compiled = self._loaded.get(sig, _MISSING)
        if compiled is _MISSING:  # None: a program the store cannot keep, plain jit
            compiled = self._loaded[sig] = self._load_or_build(sig, args)
        if compiled is None:
            return self._jit(*args)
        self._last[statics] = compiled
        return compiled(*dynamic)

    def _load_or_build(self, sig: tuple, args: tuple):
        from jax.experimental import serialize_executable as se

        from jtrack.data.results import atomic_write_bytes

        statics, tree, avals = sig
        text = repr((self._name, _environment(), statics, str(tree), avals))
        if " at 0x" in text:  # a repr with an address is not stable across processes
            return None
        key = hashlib.sha256(text.encode()).hexdigest()[:32]
        path = os.path.join(_folder, f"{self._name.rsplit('.', 1)[-1].strip('_')}-{key}.bin")
        if os.path.exists(path + ".unstorable"):  # plain jit (and JAX's cache) from now on
            return None
        if os.path.exists(path):
            _prepare_cpu_kernels()
            fut = _prefetched.pop(path, None)
            try:
                # Not started yet: load it here rather than wait behind others.
                loaded = _read(path) if fut is None or fut.cancel() else fut.result()
                _note_used(path)
                return loaded
            except Exception:  # noqa: BLE001 - unreadable or stale: rebuild it below
                pass
        compiled, fresh = _compile_fresh(self._jit, args)
        if fresh:
            try:
                blob = pickle.dumps(se.serialize(compiled))
            except Exception as e:  # noqa: BLE001 - XLA cannot serialise every program
                # (jax 0.10 CPU: "`LessThan` is not serializable" for some sorts)
                blob, path = repr(e).encode(), path + ".unstorable"
            try:
                atomic_write_bytes(path, blob)
                if not path.endswith(".unstorable"):
                    _note_used(path)
            except OSError:
                pass  # a read-only folder: still usable in this process
        return compiled


def stored_jit(fun: Callable | None = None, *, static_argnums: int | tuple[int, ...] = (),
               donate_argnums: int | tuple[int, ...] = ()):
    """``jax.jit`` for jtrack's jitted cores, positional arguments only,
    whose executables the store keeps (when one is enabled). Usable as a
    decorator, with or without arguments."""
    as_tuple = lambda v: (v,) if isinstance(v, int) else tuple(v)  # noqa: E731
    if fun is None:
        return functools.partial(stored_jit, static_argnums=static_argnums,
                                 donate_argnums=donate_argnums)
    return _Stored(fun, as_tuple(static_argnums), as_tuple(donate_argnums))
