"""vot-toolkit end to end: a local workspace over VOT-layout sequences already
on disk, then the toolkit's own ``vot evaluate`` and ``vot analysis`` with
jtrack as a ``traxpython`` tracker.

The workspace links the sequence folders (legacy VOT layout: ``%08d.jpg`` and
``groundtruth.txt``; nothing is copied or downloaded), writes ``config.yaml``
and ``trackers.ini``. An existing workspace is reused: the toolkit skips
finished sequences. ``--experiment`` picks the stack:

* ``unsupervised`` (default): one pass from the first frame, average
  accuracy. Runs with the ``vot`` extra (``pip install -e ".[vot]"``,
  vot-toolkit 0.9.0).
* ``supervised``: VOT's reset-based protocol (VOT2017 parameters: the tracker
  is re-initialized 5 frames after each failure, i.e. zero overlap; 15
  repetitions, stopped after 3 identical ones), with the accuracy-robustness
  and failure-count analyses. vot-toolkit 0.8/0.9 fail this experiment
  even with their own test tracker: it needs vot-toolkit 0.7.4 (with vot-trax
  4.0.2 and attributee 0.1.9), in an environment of its own.

  python -m experiments.vot_workspace --workspace=/tmp/vot_ws \\
      --sequences=../shared/data/vot/ball1 [--experiment=supervised]
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workspace", None, "Workspace folder (created, or reused).")
flags.DEFINE_list("sequences", None, "VOT sequence folders (default: every one under "
                  "<data root>/vot).")
flags.DEFINE_string("config", "", "TrackerConfig overrides as 'field=value' words "
                    "(JTRACK_VOT_CONFIG).")
flags.DEFINE_integer("timeout", 600, "Seconds the toolkit waits for a reply; the first "
                     "sequence compiles init and step.")
flags.DEFINE_enum("experiment", "unsupervised", ["unsupervised", "supervised"],
                  "unsupervised: one pass; supervised: reset-based (vot-toolkit 0.7.4).")
flags.mark_flag_as_required("workspace")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_stack(experiment: str) -> dict:
    """The experiment stack; analyses are named, the names key the printed results.

    No EAO: vot-toolkit 0.7.4's EAO curve ends at the longest run between
    resets, so over a few short sequences its score (a mean over a range of
    lengths; VOT2017: 100 to 356 frames) is often NaN."""
    if experiment == "unsupervised":
        return {"title": "jtrack one-pass on local VOT sequences",
                "experiments": {"baseline": {"type": "unsupervised", "repetitions": 1,
                                             "analyses": [{"type": "average_accuracy",
                                                           "name": "accuracy", "burnin": 1}]}}}
    return {"title": "jtrack reset-based on local VOT sequences",
            "experiments": {"baseline": {
                "type": "supervised", "repetitions": 15, "skip_initialize": 5,
                "failure_overlap": 0.0, "analyses": [
                    {"type": "supervised_average_ar", "name": "ar", "sensitivity": 30},
                    {"type": "cumulative_failures", "name": "failures"}]}}}


def build_workspace(workspace: str, sequences: list[str], config_words: str,
                    timeout: int, experiment: str = "unsupervised") -> list[str]:
    """Write (or refresh) the workspace's files; returns the sequence names."""
    import yaml  # vot-toolkit's dependency

    from jtrack.data import atomic_write_text

    folder = os.path.join(workspace, "sequences")
    os.makedirs(folder, exist_ok=True)
    names = []
    for seq in sequences:
        seq = os.path.abspath(seq)
        if not os.path.isfile(os.path.join(seq, "groundtruth.txt")):
            raise app.UsageError(f"{seq}: not a VOT sequence folder (no groundtruth.txt)")
        name = os.path.basename(seq)
        link = os.path.join(folder, name)
        if not os.path.islink(link):
            os.symlink(seq, link)
        names.append(name)
    atomic_write_text(os.path.join(folder, "list.txt"), "\n".join(names) + "\n")
    atomic_write_text(os.path.join(workspace, "config.yaml"),
                      yaml.safe_dump({"registry": ["./trackers.ini"],
                                      "stack": make_stack(experiment)}))
    # A reset re-initialises the running tracker on the same connection
    # (the adapter serves any number of initialisations).
    atomic_write_text(os.path.join(workspace, "trackers.ini"), "\n".join([
        "[jtrack]", "label = jtrack", "protocol = traxpython",
        "command = jtrack.adapters.vot_run", f"paths = {REPO}", f"timeout = {timeout}",
        f"env_JTRACK_VOT_CONFIG = {config_words}", ""]))
    return names


def main(argv):
    del argv
    try:
        import vot
    except ImportError as e:
        raise app.UsageError(f"{e} (pip install -e '.[vot]')") from e
    if FLAGS.experiment == "supervised" and tuple(
            int(v) for v in vot.__version__.split(".")[:2]) >= (0, 8):
        # its reset loop hands the trax runtime one region where a list is expected
        raise app.UsageError(f"vot-toolkit {vot.__version__} fails the supervised experiment "
                             "('multiple objects were provided for initialization'); "
                             "use vot-toolkit 0.7.4")
    from jtrack.data import default_data_root

    sequences = FLAGS.sequences or sorted(
        os.path.dirname(p) for p in glob.glob(os.path.join(default_data_root(), "vot", "*",
                                                           "groundtruth.txt")))
    if not sequences:
        raise app.UsageError("no VOT sequence given or found under the data root")
    workspace = os.path.abspath(FLAGS.workspace)
    names = build_workspace(workspace, sequences, FLAGS.config, FLAGS.timeout,
                            FLAGS.experiment)
    for command in ("evaluate", "analysis"):
        subprocess.run([sys.executable, "-m", "vot", command, "--workspace", workspace,
                        "jtrack"], check=True)
    reports = sorted(glob.glob(os.path.join(workspace, "analysis", "*.json")))
    with open(reports[-1]) as f:
        report = json.load(f)
    baseline = report["results"]["baseline"]  # one result per analysis, in stack order
    analyses = [a["name"] for a in baseline["parameters"]["analyses"]]
    print(f"vot-toolkit {report['toolkit']}, {FLAGS.experiment} experiment "
          f"(report {os.path.relpath(reports[-1], workspace)}):")
    print(json.dumps({"sequences": names, **dict(zip(analyses, baseline["results"]))}))


if __name__ == "__main__":
    app.run(main)
