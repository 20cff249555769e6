"""`python -m ingest_app.serve --nginx-conf PATH`: ingest as it runs locally, nginx in front of
the WSGI server (`ingest_app.server`), supervised as one process group (in k8s the same pair is a
pod with an nginx sidecar).

The app's threads block while reading a request body, so a few hundred clients that announce a
body and never send it would take every thread (slowloris); nginx buffers each request whole
before handing it on, and drops clients that stall. If either process exits, the other is stopped
and this exits non-zero, so the stack's supervisor sees ingest as down.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from ingest_app import server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nginx-conf", required=True, type=Path)
    args = parser.parse_args(argv)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    children = [
        subprocess.Popen(server.argv()),
        subprocess.Popen([nginx, "-c", str(args.nginx_conf), "-p", str(args.nginx_conf.parent)]),
    ]
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while all(child.poll() is None for child in children):
        time.sleep(0.2)
    died_on_its_own = not stopping
    stop(signal.SIGTERM, None)
    deadline = time.monotonic() + 30
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return 1 if died_on_its_own else 0


if __name__ == "__main__":
    sys.exit(main())
