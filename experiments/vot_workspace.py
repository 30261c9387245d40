"""vot-toolkit end to end: a local workspace over VOT-layout sequences already
on disk, then the toolkit's own ``vot evaluate`` (one-pass experiment) and
``vot analysis`` with jtrack as a ``traxpython`` tracker.

The workspace links the sequence folders (legacy VOT layout: ``%08d.jpg`` and
``groundtruth.txt``; nothing is copied or downloaded), writes ``config.yaml``
(a one-pass stack with the average-accuracy analysis) and ``trackers.ini``.
An existing workspace is reused: the toolkit skips finished sequences.

  python -m experiments.vot_workspace --workspace=/tmp/vot_ws \\
      --sequences=../shared/data/vot/ball1

Needs the ``vot`` extra (``pip install -e ".[vot]"``). The reset-based
(supervised) experiment is left out: vot-toolkit 0.8/0.9 fail it even with
their own test tracker.
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
flags.mark_flag_as_required("workspace")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STACK = {"title": "jtrack one-pass on local VOT sequences",
         "experiments": {"baseline": {"type": "unsupervised", "repetitions": 1, "analyses": [
             {"type": "average_accuracy", "name": "accuracy", "burnin": 1}]}}}


def build_workspace(workspace: str, sequences: list[str], config_words: str,
                    timeout: int) -> list[str]:
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
                      yaml.safe_dump({"registry": ["./trackers.ini"], "stack": STACK}))
    atomic_write_text(os.path.join(workspace, "trackers.ini"), "\n".join([
        "[jtrack]", "label = jtrack", "protocol = traxpython",
        "command = jtrack.adapters.vot_run", f"paths = {REPO}", f"timeout = {timeout}",
        f"env_JTRACK_VOT_CONFIG = {config_words}", ""]))
    return names


def main(argv):
    del argv
    try:
        import vot  # noqa: F401
    except ImportError as e:
        raise app.UsageError(f"{e} (pip install -e '.[vot]')") from e
    from jtrack.data import default_data_root

    sequences = FLAGS.sequences or sorted(
        os.path.dirname(p) for p in glob.glob(os.path.join(default_data_root(), "vot", "*",
                                                           "groundtruth.txt")))
    if not sequences:
        raise app.UsageError("no VOT sequence given or found under the data root")
    workspace = os.path.abspath(FLAGS.workspace)
    names = build_workspace(workspace, sequences, FLAGS.config, FLAGS.timeout)
    for command in ("evaluate", "analysis"):
        subprocess.run([sys.executable, "-m", "vot", command, "--workspace", workspace,
                        "jtrack"], check=True)
    reports = sorted(glob.glob(os.path.join(workspace, "analysis", "*.json")))
    with open(reports[-1]) as f:
        report = json.load(f)
    accuracy = report["results"]["baseline"]["results"]
    print(f"vot-toolkit {report['toolkit']}, one-pass experiment, average accuracy "
          f"(report {os.path.relpath(reports[-1], workspace)}):")
    print(json.dumps({"sequences": names, "accuracy": accuracy}))


if __name__ == "__main__":
    app.run(main)
