"""Helpers for tests that need several TensorFlow devices or processes.

TensorFlow fixes its logical devices when it first initialises them, so a test
that wants two logical CPUs (a 2-replica `MirroredStrategy` on a CPU-only
machine) or several workers (`MultiWorkerMirroredStrategy`) runs its body in a
fresh Python process. The child calls `split_cpu` before touching any device,
does its work and reports with `print_results`; the parent starts it with
`run_python` (bounded in time, killed on timeout) and gets the parsed results
back. `free_ports` and `tf_config` set up a local multi-worker cluster.
"""

import json
import os
import socket
import subprocess
import sys

from mmkeras.validation import check_int

RESULTS_PREFIX = "RESULTS_JSON="


def split_cpu(count=2):
    """Splits the physical CPU into `count` logical devices (`/cpu:0` ... `/cpu:{count-1}`).

    Must run before TensorFlow initialises its devices (before any op, model or
    strategy is created in the process); raises `RuntimeError` otherwise.

    Args:
        count: int >= 1, number of logical CPU devices.

    Returns:
        The list of logical CPU device names.

    Example:

    ```python
    # First thing in a fresh process:
    from mmkeras.testing.distributed import split_cpu
    split_cpu(2)  # ['/job:localhost/replica:0/task:0/device:CPU:0', '.../device:CPU:1']
    ```
    """
    import tensorflow as tf

    count = check_int("count", count, minimum=1)
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(int(count))]
    )
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def print_results(results):
    """Prints `results` (JSON-serialisable) on one line that `run_python` picks up.

    Example:

    >>> print_results({"loss": [0.5]})
    RESULTS_JSON={"loss": [0.5]}
    """
    print(RESULTS_PREFIX + json.dumps(results), flush=True)


def parse_results(output):
    """The last `print_results` payload in a process's stdout, or None.

    Example:

    >>> parse_results('noise\\nRESULTS_JSON={"a": 1}\\n')
    {'a': 1}
    """
    lines = [line for line in output.splitlines() if line.startswith(RESULTS_PREFIX)]
    return json.loads(lines[-1][len(RESULTS_PREFIX):]) if lines else None


def child_environment(extra=None):
    """`os.environ` for a child Python process running this checkout of mmkeras.

    Puts the repository root first on `PYTHONPATH`, selects the TensorFlow
    backend and quietens TensorFlow's C++ logging; `extra` entries are added
    last (None values remove a variable).

    Example:

    >>> child_environment({"TF_CONFIG": None})["KERAS_BACKEND"]
    'tensorflow'
    """
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    python_path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=python_path)
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def run_python(args, timeout=300, env=None, cwd=None):
    """Runs `python ARGS` in a fresh process and returns its `print_results` payload.

    The process is killed if it runs past `timeout` seconds. A non-zero exit,
    a timeout or a missing payload raises `AssertionError` with the tail of
    the process's output.

    Args:
        args: list of command-line arguments after the interpreter (a script
            path and its arguments, or `["-c", code]`).
        timeout: seconds.
        env: extra environment variables (see `child_environment`).
        cwd: working directory.

    Returns:
        The parsed results.

    Example:

    >>> run_python(["-c", "from mmkeras.testing.distributed import print_results; "
    ...             "print_results({'ok': True})"], timeout=60)
    {'ok': True}
    """
    try:
        proc = subprocess.run(
            [sys.executable, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=child_environment(env),
        )
    except subprocess.TimeoutExpired as error:
        raise AssertionError(
            f"python {' '.join(args)[:200]} ran past {timeout} s and was killed:\n"
            f"{_tail(error.stdout)}\n{_tail(error.stderr)}"
        ) from error
    results = parse_results(proc.stdout)
    if proc.returncode != 0 or results is None:
        raise AssertionError(
            f"python {' '.join(args)[:200]} failed (exit {proc.returncode}):\n"
            f"{_tail(proc.stdout)}\n{_tail(proc.stderr, 6000)}"
        )
    return results


def free_ports(count):
    """`count` distinct TCP ports on 127.0.0.1 that are free right now.

    Example:

    >>> ports = free_ports(2)
    >>> len(set(ports)) == 2 and all(1024 <= p < 65536 for p in ports)
    True
    """
    sockets = []
    try:
        for _ in range(int(count)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports, index, task_type="worker"):
    """The `TF_CONFIG` JSON of task `index` in a local cluster of workers on `ports`.

    Example:

    >>> import json
    >>> json.loads(tf_config([2222, 2223], 1))["task"]
    {'type': 'worker', 'index': 1}
    """
    cluster = {task_type: [f"127.0.0.1:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": int(index)}})


def _tail(text, size=3000):
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text[-size:]
