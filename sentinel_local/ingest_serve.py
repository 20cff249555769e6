"""`python -m sentinel_local.ingest_serve --nginx-conf PATH [--upstream-socket PATH ...]`: ingest as it runs
locally, nginx in front of the WSGI servers (`ingest_app.server`), supervised as one process group
(in k8s the same pair is a pod with an nginx sidecar). Each app server is granian with one worker
process, listening on an upstream of its own: each Unix socket given here, or without any, one
loopback port per worker from the upstream port on (`server.upstreams`). nginx's config names the
same upstreams and sends each request to the server with the fewest in flight.

The app's threads block while reading a request body, so a few hundred clients that announce a
body and never send it would take every thread (slowloris); nginx buffers each request whole
before handing it on, and drops clients that stall. If any process exits, the others are stopped
and this exits non-zero, so the stack's supervisor sees ingest as down.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from ingest_app import server
from sentinel.process_group import run_together


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nginx-conf", required=True, type=Path)
    parser.add_argument(
        "--upstream-socket",
        type=Path,
        action="append",
        default=[],
        help="where one app server listens; once per server (default: loopback TCP, a port per worker)",
    )
    args = parser.parse_args(argv)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    sockets: list[Path] = args.upstream_socket
    for path in sockets:
        # A unit killed outright leaves granian's socket behind, and granian would then fail to
        # bind it: the path is this unit's alone.
        path.unlink(missing_ok=True)
    binds = sockets or server.upstreams(None)
    app_servers = [subprocess.Popen(app_server_argv(bind), start_new_session=True) for bind in binds]
    children = [
        *app_servers,
        subprocess.Popen([nginx, "-c", str(args.nginx_conf), "-p", str(args.nginx_conf.parent)]),
    ]
    try:
        # A stalled server gets 30 s to finish its requests, then it is killed.
        return 1 if run_together(children, what="ingest process", stop_timeout_s=30) else 0
    finally:
        for app_server in app_servers:
            stop_group(app_server.pid)
        for path in sockets:
            # granian removes it when it stops normally, not when it is killed, and once in five
            # CI runs not even then: nothing listens on it any more.
            path.unlink(missing_ok=True)


def app_server_argv(bind: Path | int) -> list[str]:
    """The command line of the app server listening on `bind`: granian with one worker process."""
    return server.argv(bind, workers=1)


def stop_group(pgid: int, grace_s: float = 5.0) -> None:
    """SIGTERM every live process left in group `pgid`, then SIGKILL any still there after `grace_s`."""
    if not group_members(pgid):
        return  # the usual case: the master stopped its workers before it exited
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while group_members(pgid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            return
        time.sleep(0.1)


def group_members(pgid: int) -> list[int]:
    """PIDs of the running (not zombie) processes in group `pgid`, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


if __name__ == "__main__":
    sys.exit(main())
