"""Joining a multi-process (multi-host) run through ``jax.distributed``.

The programs that can span hosts (``experiments.run``/``jtrack eval``,
``experiments.pretrain``) share these absl flags. With ``--distributed``
each process calls ``jax.distributed.initialize`` with the coordinator
address, process count and id given, or without them as JAX detects the
cluster (Slurm, Open MPI, ...). On CPU the processes exchange data through
gloo, as JAX documents for CPU collectives.
"""

from __future__ import annotations


def define_flags(flag_values) -> None:
    """``--distributed``, ``--coordinator_address``, ``--num_processes`` and
    ``--process_id`` in an absl ``FlagValues`` (each program's own)."""
    from absl import flags

    if "distributed" in flag_values:
        return
    flags.DEFINE_bool("distributed", False, "Join a jax.distributed run: with the three "
                      "flags below, or without them as JAX detects the cluster (e.g. Slurm).",
                      flag_values=flag_values)
    flags.DEFINE_string("coordinator_address", None, "host:port of process 0 "
                        "(jax.distributed).", flag_values=flag_values)
    flags.DEFINE_integer("num_processes", None, "Number of processes (jax.distributed).",
                         flag_values=flag_values)
    flags.DEFINE_integer("process_id", None, "This process's id, 0..num_processes-1.",
                         flag_values=flag_values)


def initialize_from_flags(flag_values) -> tuple[int, int]:
    """``jax.distributed.initialize`` as the flags of :func:`define_flags`
    say (nothing without ``--distributed``); returns (process index, count).
    Call it before anything else touches JAX's devices."""
    explicit = (flag_values.coordinator_address, flag_values.num_processes,
                flag_values.process_id)
    if not flag_values.distributed:
        if any(v is not None for v in explicit):
            raise ValueError("--coordinator_address/--num_processes/--process_id need "
                             "--distributed")
        return 0, 1
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(*explicit)
    return jax.process_index(), jax.process_count()
