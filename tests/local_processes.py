"""Start a command as ``n`` jax.distributed processes on localhost (not a
test module): CPU only, a free coordinator port, each process's stdout
back; a failed process fails the test with its stderr."""

import os
import socket
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(command: list[str], n: int, env: dict | None = None, timeout: int = 300) -> list[str]:
    """``command`` alone (``n == 1``) or as ``n`` processes joined with
    ``--distributed`` (gloo on CPU); returns each process's stdout."""
    if n > 1:
        command = command + ["--distributed",
                             f"--coordinator_address=127.0.0.1:{free_port()}",
                             f"--num_processes={n}"]
    env = {**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu", **(env or {})}
    procs = [subprocess.Popen(command + ([f"--process_id={i}"] if n > 1 else []), cwd=REPO,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
             for i in range(n)]
    outs = [p.communicate(timeout=timeout) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return [out for out, _ in outs]
