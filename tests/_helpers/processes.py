"""Running the programs of a test (MPI jobs, servers and clients, torchrun)
with a bounded wait: a hang becomes a test failure, and nothing is left
running."""

import os
import signal
import subprocess
from typing import Dict, List, Optional

import pytest


def run_bounded(
    command: List[str],
    cwd,
    timeout: float,
    env: Optional[Dict[str, str]] = None,
    merge_stderr: bool = True,
    description: Optional[str] = None,
) -> subprocess.CompletedProcess:
    """Run ``command`` in its own process group and wait for it at most
    ``timeout`` seconds. Past that, the group is sent ``SIGTERM`` (``torchrun``
    and ``mpiexec`` pass it on to their workers), then ``SIGKILL`` if it is
    still there 30 s later, and the test fails.

    :param command: the program and its arguments
    :param cwd: the working directory
    :param timeout: how long to wait, in seconds
    :param env: the environment (by default, the one of the tests)
    :param merge_stderr: send the standard error to the standard output
    :param description: what the command is, for the failure message
    :return: the finished process, with its output as text
    """
    posix = os.name == "posix"
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
        start_new_session=posix,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal(process, signal.SIGTERM if posix else None)
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            _signal(process, signal.SIGKILL if posix else None)
            stdout, stderr = process.communicate(timeout=30)
        what = description if description is not None else str(command)
        pytest.fail(f"{what} ran longer than {timeout} s:\n{stdout}\n{stderr or ''}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _signal(process: subprocess.Popen, signum: Optional[int]) -> None:
    if signum is None:
        process.kill()
        return
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
