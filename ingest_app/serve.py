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
import subprocess
import sys
from pathlib import Path

from ingest_app import server
from sentinel.process_group import run_together


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nginx-conf", required=True, type=Path)
    args = parser.parse_args(argv)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    children = [
        subprocess.Popen(server.argv()),
        subprocess.Popen([nginx, "-c", str(args.nginx_conf), "-p", str(args.nginx_conf.parent)]),
    ]
    # A stalled server gets 30 s to finish its requests, then it is killed.
    return 1 if run_together(children, what="ingest process", stop_timeout_s=30) else 0


if __name__ == "__main__":
    sys.exit(main())
