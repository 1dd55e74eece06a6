"""A small server that runs cgraph commands in real processes quickly, for the fuzz tests.

Starting Python and importing numpy for each example would take a second on a busy machine, so
the server, started once and never running the passes itself, forks a child per request. Each
child has its standard streams on real file descriptors (closed, broken or ASCII-only where
asked), Python warnings turned into errors, and a time limit: a child still running after it is
killed, and reported as the exit code TIMEOUT.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

TIMEOUT = 124  # the exit code reported for a child killed at its time limit (as timeout(1) does)

SERVER = r"""
import io, json, os, signal, sys, time, traceback, warnings
import numpy, yaml, click  # imported once, before forking
import cgraph.__main__

for request in sys.stdin:
    job = json.loads(request)
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(job["cwd"])
            stdin = os.open(job["stdin"], os.O_RDONLY)
            os.dup2(stdin, 0)
            err = os.open(job["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(err, 2)
            out = os.open(job["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            if job["stdout"] == "closed":
                os.close(1)
            elif job["stdout"] == "broken":
                read_end, write_end = os.pipe()
                os.close(read_end)
                os.dup2(write_end, 1)
            else:
                os.dup2(out, 1)
            for fd in (stdin, err, out):
                os.close(fd)
            sys.stdin = open(0, "r", closefd=False)
            sys.stderr = open(2, "w", errors="backslashreplace", closefd=False)
            encoding = "ascii" if job["stdout"] == "ascii" else "utf-8"
            sys.stdout = None if job["stdout"] == "closed" else open(1, "w", encoding=encoding, closefd=False)
            warnings.simplefilter("error")
            sys.argv = ["cgraph", *job["args"]]
            code = 0
            try:
                cgraph.__main__.main()
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
            for stream in (sys.stdout, sys.stderr):
                try:
                    if stream is not None:
                        stream.flush()
                except BaseException:
                    pass
        except BaseException:
            traceback.print_exc()
            code = 99
        os._exit(code)
    deadline = time.monotonic() + job.get("timeout", 60)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print(os.waitstatus_to_exitcode(status), flush=True)
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            print(%d, flush=True)
            break
        time.sleep(0.005)
""" % TIMEOUT


class ForkingServer:
    """The server's process; :meth:`run` runs one command in a child of it and returns its exit code
    (negative for a signal, TIMEOUT for a child killed at its time limit)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})

    def run(self, job: dict[str, Any]) -> int:
        """Run ``job``: cwd, stdin, out and err (paths), stdout (file, closed, broken or ascii), args,
        and optionally timeout (seconds)."""
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)
