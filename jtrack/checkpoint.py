"""orbax checkpoints of a pytree state plus JSON metadata, with exact resume.

Used for the pretraining state (:func:`jtrack.pretrain.train.init_state`:
params, optimizer state, step, model key, data seed; metadata: the config
and the domain names in order) and for ``jtrack track --resume`` (tracker
states at flush points; metadata: input, start boxes, seed, config). A
resume with different data or settings fails loudly instead of silently
computing something else.

Several processes (``jax.distributed``): every process makes its own
``Checkpoints`` on the same shared folder and calls ``maybe_save`` /
``restore`` at the same steps; orbax writes each array's shards from the
process that holds them and the metadata once, and marks the step
finished only when all processes are done.
"""

from __future__ import annotations

import os

import jax


class Checkpoints:
    """Save every ``every`` steps into ``directory`` (keeps ``keep``); restore
    the latest. A thin wrapper over ``orbax.checkpoint.CheckpointManager``,
    made on first use (a short ``jtrack track`` run never imports orbax)."""

    def __init__(self, directory: str, every: int, keep: int = 2):
        if every < 1:
            raise ValueError(f"checkpoint interval must be >= 1, got {every}")
        self.every = every
        self.directory = os.path.abspath(directory)
        self.keep = keep
        self._manager = None

    @property
    def manager(self):
        if self._manager is None:
            import orbax.checkpoint as ocp

            self._manager = ocp.CheckpointManager(
                self.directory,
                options=ocp.CheckpointManagerOptions(max_to_keep=self.keep, create=True))
        return self._manager

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def steps(self) -> list[int]:
        """The steps saved (and finalized) so far, ascending."""
        return sorted(self.manager.all_steps())

    def maybe_save(self, step: int, state: dict, meta: dict, force: bool = False) -> bool:
        """Save when ``step`` is a multiple of ``every`` (or ``force``)."""
        if not force and step % self.every:
            return False
        if step in self.manager.all_steps():
            return False
        import orbax.checkpoint as ocp

        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
        return True

    def restore(self, template: dict, meta: dict, step: int | None = None) -> dict | None:
        """The state saved at ``step`` (default: latest), laid out like
        ``template`` (a freshly initialised state: shapes, dtypes, shardings),
        or None when there is no checkpoint. Raises ``ValueError`` when the
        saved metadata differs from ``meta``."""
        step = self.manager.latest_step() if step is None else step
        if step is None:
            return None
        import orbax.checkpoint as ocp

        where = f"checkpoint {self.manager.directory} step {step}"
        # The settings first: a run with other settings may hold another layout.
        saved = self.manager.restore(step, args=ocp.args.Composite(
            meta=ocp.args.JsonRestore()))["meta"]
        diff = sorted(k for k in set(saved) | set(meta) if saved.get(k) != meta.get(k))
        if diff:
            raise ValueError(
                f"{where} was made with different settings ({', '.join(diff)}); e.g. "
                f"{diff[0]}: saved {saved.get(diff[0])!r} vs now {meta.get(diff[0])!r}. "
                "Use another folder or the same settings")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        try:
            got = self.manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract)))
        except ValueError as e:
            raise ValueError(f"{where} holds a state laid out differently from this "
                             f"jtrack's (written by another version?); remove it to start "
                             f"over. orbax: {str(e)[:300]}") from e
        return got["state"]

    def wait(self) -> None:
        if self._manager is not None:
            self._manager.wait_until_finished()

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
