"""Shared helpers of the benchmark suite: timing, statistics, tables, JSON
results, machine description, compile-event counting, input data.

This is an edge module (clock, files, stdout). Every benchmark:
  * times jitted calls after warm-up, blocking on the result
    (``jax.block_until_ready``), and reports median / min / max / mean;
  * prints a table and writes ``<out>/<name>.json`` atomically, with the
    machine description and the exact command line.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import resource
import sys
import tempfile
import time
from typing import Any, Callable, Iterable, Sequence

import numpy as np

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


# ----------------------------------------------------------------------------
# timing


def summarize(seconds: Iterable[float]) -> dict:
    """Per-call times in seconds -> {'n', 'median_ms', 'min_ms', 'max_ms', 'mean_ms'}."""
    t = np.asarray(list(seconds), np.float64)
    if t.size == 0:
        raise ValueError("summarize got no timings")
    return {"n": int(t.size), "median_ms": 1e3 * float(np.median(t)),
            "min_ms": 1e3 * float(t.min()), "max_ms": 1e3 * float(t.max()),
            "mean_ms": 1e3 * float(t.mean())}


def time_call(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of ``fn()`` until its result is ready, and the result."""
    import jax

    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    return time.perf_counter() - t0, out


def bench(fn: Callable[[], Any], warmup: int = 2, repeats: int = 10,
          budget_s: float | None = None, min_repeats: int = 3) -> dict:
    """Call ``fn()`` ``warmup`` times (compilation, caches), then time
    ``repeats`` calls, each blocked until ready; with ``budget_s``, stop
    early once the timed calls took that long (but after at least
    ``min_repeats``): slow stages get fewer, fast ones all. Returns
    :func:`summarize`."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        time_call(fn)
    times: list[float] = []
    while len(times) < repeats:
        times.append(time_call(fn)[0])
        if budget_s is not None and len(times) >= min_repeats and sum(times) >= budget_s:
            break
    return summarize(times)


def copy_tree(tree):
    """Fresh device buffers for every leaf (``jtrack.step`` donates its state)."""
    import jax
    import jax.numpy as jnp

    return jax.tree.map(lambda x: jnp.array(x, copy=True) if isinstance(x, jax.Array) else x, tree)


def tree_bytes(tree) -> int:
    """Total bytes of the array leaves of a pytree (PRNG keys count their data)."""
    import jax

    total = 0
    for leaf in jax.tree.leaves(tree):
        if hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        total += int(getattr(leaf, "nbytes", 0))
    return total


class CompileCounter:
    """Counts XLA compilations (or persistent-cache loads) of this process
    through ``jax.monitoring``: every executable jax obtains fires one
    ``backend_compile_duration`` event, a persistent-cache hit also fires
    ``cache_hits``. Listeners cannot be removed, so make one per process."""

    def __init__(self):
        import jax

        self.events: list[tuple[str, float]] = []  # (fun_name, seconds)
        self.cache_hits = 0

        def on_duration(event, duration, **kw):
            if event == "/jax/core/compile/backend_compile_duration":
                self.events.append((str(kw.get("fun_name", "?")), float(duration)))

        def on_event(event, **kw):
            if event == "/jax/compilation_cache/cache_hits":
                self.cache_hits += 1

        jax.monitoring.register_event_duration_secs_listener(on_duration)
        jax.monitoring.register_event_listener(on_event)

    @property
    def count(self) -> int:
        return len(self.events)

    def seconds(self, since: int = 0) -> float:
        return float(sum(d for _, d in self.events[since:]))


# ----------------------------------------------------------------------------
# memory (host)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux: ru_maxrss in KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / (1024.0 * 1024.0) if sys.platform == "darwin" else kib / 1024.0


def current_rss_mib() -> float | None:
    """Current resident set size (Linux /proc), None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except (OSError, ValueError, IndexError):
        return None


# ----------------------------------------------------------------------------
# machine and results


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """Where the figures come from: devices, CPU, versions, load."""
    import jax

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "load_avg_1_5_15": load,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "platform": platform.platform(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def machine_line(m: dict) -> str:
    return (f"{m['backend']} {m['device_kind']} x{len(m['devices'])} | {m['cpu']} "
            f"({m['cpus_usable']} usable of {m['cpu_count']} cores) | load {m['load_avg_1_5_15']} "
            f"| jax {m['jax']}")


def speed_probe(seconds: float = 1.0, n: int = 512) -> float:
    """GFLOP/s of repeated ``(n, n) @ (n, n)`` float32 numpy matmuls for
    ``seconds``: a fixed compute-bound workload, a hint of how fast a shared
    machine runs right now (this VM's speed drifted by ~25% between runs of
    the same suite; the probe sees a slow core, not every slowdown)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ a
        count += 1
    return 2 * n ** 3 * count / (time.perf_counter() - t0) / 1e9


def cpu_seconds(children: bool = True) -> float:
    """User + system CPU seconds of this process (all threads) and, with
    ``children``, of its finished child processes: on a shared machine this
    is steadier than wall time."""
    total = 0.0
    for who in (resource.RUSAGE_SELF,) + ((resource.RUSAGE_CHILDREN,) if children else ()):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def write_results(out_dir: str, name: str, results: dict, machine_info: dict | None = None
                  ) -> str:
    """Write ``{'benchmark', 'utc', 'command', 'machine', **results}`` to
    ``out_dir/name.json`` atomically. Returns the path.

    ``machine_info``: a :func:`machine` dict made elsewhere (a benchmark
    whose work runs in child processes passes one a child made, so the
    parent never imports jax: ~2 s per process start). Default: this
    process's."""
    payload = {"benchmark": name, "process_cpu_s": cpu_seconds(),
               "utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
               "command": " ".join([os.path.basename(sys.executable), "-m",
                                    f"benchmarks.{name}"] + sys.argv[1:]),
               "machine": machine_info or machine(), **results}
    path = os.path.join(out_dir, f"{name}.json")
    _atomic_write(path, json.dumps(payload, indent=2, default=_json_default) + "\n")
    return path


def _atomic_write(path: str, text: str) -> None:
    """``jtrack.data.atomic_write_text`` without importing jtrack (which
    imports jax), for the jax-free parent processes: temp file in the same
    folder, then rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-markdown table (also readable on a terminal)."""
    def cell(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)

    body = [[cell(v) for v in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in body)) if body else len(str(h))
              for i, h in enumerate(headers)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"  # noqa: E731
    return "\n".join([line([str(h) for h in headers]),
                      "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(r) for r in body)])


# ----------------------------------------------------------------------------
# command line and data


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argparse parser with the flags every benchmark has (``--out``)."""
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=DEFAULT_OUT,
                   help="results folder for <benchmark>.json (default: benchmarks/results)")
    p.add_argument("--tiny", action="store_true",
                   help="tiny sample counts and sizes (smoke test; figures meaningless)")
    p.add_argument("--compile-cache", default=None,
                   help="persistent compilation cache folder (default: none)")
    return p


# Small sample counts for smoke tests (the defaults are the real settings).
TINY = dict(n_candidates=16, n_pos_init=20, n_neg_init=60, n_bbreg=20, iters_init=2,
            iters_update=2, n_pos_update=8, n_neg_update=16, batch_pos=4, batch_neg=8,
            batch_neg_cand=16, top_k=3, frames_long=4, frames_short=3, hidden=32)


def config(tiny: bool = False, **changes):
    """The default TrackerConfig, or :data:`TINY` sample counts, with ``changes``."""
    import jtrack

    return jtrack.TrackerConfig(**{**(TINY if tiny else {}), **changes})


def add_set_flag(p: argparse.ArgumentParser) -> None:
    """``--set FIELD=VALUE`` (repeatable): TrackerConfig overrides, read by
    :func:`config_from_sets`."""
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="TrackerConfig override (JSON value), repeatable")


def config_from_sets(tiny: bool, sets) -> tuple[Any, dict]:
    """(:func:`config` with the ``--set`` overrides ``sets``, the overrides
    as a dict). Raises ValueError naming a bad field or value."""
    from jtrack.config import parse_overrides, with_fields

    overrides = parse_overrides(sets)
    return with_fields(config(tiny), overrides), overrides


def enable_compile_cache(path: str | None) -> None:
    """Use JAX's persistent compilation cache in ``path`` (None: leave as is,
    the benchmarks measure compilation from a cold start by default)."""
    if path:
        from jtrack.cache import enable_compilation_cache

        enable_compilation_cache(path)


def load_frames(source: str, n: int | None) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` frames ``(H, W, 3) uint8`` and their ``(n, 4)`` xywh ground truth
    (``n=None``: the whole sequence; 40 frames of the built-in one).

    ``source``: ``'synthetic'`` (the built-in sequence, 240x320, any length),
    or a sequence folder (OTB/VOT/GOT-10k) or its name under the data root
    (e.g. ``otb/Crossing``)."""
    from jtrack.data import default_data_root, load_frame, read_sequence, sequence_kind
    from jtrack.data.synthetic import moving_object

    if n is not None and n < 2:
        raise ValueError(f"need at least 2 frames, got {n}")
    if source == "synthetic":
        frames, gt = moving_object(n_frames=40 if n is None else n)
        return list(frames), gt
    folder = source if os.path.isdir(source) else os.path.join(default_data_root(), source)
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"sequence {source!r} not found (looked for {folder}); set $JTRACK_DATA or pass "
            "--sequence synthetic")
    kind = sequence_kind(folder)
    if kind is None:
        raise ValueError(f"{folder} is not an OTB/VOT/GOT-10k sequence folder")
    seq = read_sequence(kind, folder)[0]
    n = len(seq.frames) if n is None else n
    if len(seq.frames) < n:
        raise ValueError(f"{folder} has {len(seq.frames)} frames, {n} requested")
    return [load_frame(p) for p in seq.frames[:n]], np.asarray(seq.gt[:n], np.float32)


@contextlib.contextmanager
def stage(msg: str):
    """Print ``msg ...`` and the seconds it took (progress on stderr)."""
    t0 = time.perf_counter()
    print(f"[{msg} ...]", file=sys.stderr, flush=True)
    yield
    print(f"[{msg}: {time.perf_counter() - t0:.1f}s]", file=sys.stderr, flush=True)


def report(out_dir: str, name: str, results: dict, heading: str, table_text: str,
           machine_info: dict | None = None) -> dict:
    """Print the machine line, ``heading`` and ``table_text``, write
    ``results`` as ``<out_dir>/<name>.json`` and return them (the common tail
    of every benchmark's ``main``; ``machine_info`` as in :func:`write_results`)."""
    machine_info = machine_info or machine()
    print(machine_line(machine_info))
    print(heading)
    print(table_text)
    print("wrote", write_results(out_dir, name, results, machine_info))
    return results
