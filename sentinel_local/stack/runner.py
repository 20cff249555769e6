"""Start, probe and stop one local service process: the mechanics every service shares.

A service is a plain foreground process that we detach into its own session, with its output in
`<stack>/<name>/<name>.log` and its pid in `<stack>/<name>/<name>.pid`. `up` is idempotent: a
service whose port already answers is reused, whoever started it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path

from sentinel import settings


class ServiceError(RuntimeError):
    """A service could not be installed or started; the message names it and quotes its log."""


def port_open(port: int, host: str = settings.HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = settings.HOST) -> int:
    """A loopback port free now, for a server started right after (tests, benchmarks)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"(no log at {path})"
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 16_384))
        text = fh.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def run_checked(
    argv: Sequence[str],
    what: str,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
) -> None:
    """Run an install or preparation step, raising ServiceError with its output on failure."""
    proc = subprocess.run(
        list(argv), cwd=cwd, env=dict(env) if env else None, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as fh:
            fh.write(f"$ {' '.join(argv)}\n{proc.stdout}\n")
    if proc.returncode != 0:
        last = "\n".join(proc.stdout.splitlines()[-30:])
        raise ServiceError(f"{what} failed (exit {proc.returncode}): {' '.join(argv)}\n{last}")


def apt_install(*packages: str) -> None:
    """Install Debian packages; `apt-get update` first, since a fresh machine has no lists."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run_checked(["apt-get", "update"], "apt-get update", env=env)
    run_checked(
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
        f"apt-get install {' '.join(packages)}",
        env=env,
    )


class Service(ABC):
    """One real service on loopback. Subclasses say how to install, configure and run it."""

    name: str
    #: the port whose answer means "up"; others are reported as addresses
    port: int
    #: seconds to wait for `ready()` after starting
    start_timeout: float = 90.0
    # The process this object started, while it is starting: its own exit status says whether it
    # runs, where the pid file's /proc check can misread a process caught mid-exec.
    _spawned: subprocess.Popen[bytes] | None = None

    @property
    def home(self) -> Path:
        return settings.STACK_DIR / self.name

    @property
    def log_path(self) -> Path:
        return self.home / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.home / f"{self.name}.pid"

    @abstractmethod
    def installed(self) -> bool: ...

    @abstractmethod
    def install(self) -> None: ...

    def prepare(self) -> None:
        """Write configuration and initialise data folders; runs before every start."""

    @abstractmethod
    def argv(self) -> list[str]: ...

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def ready(self) -> bool:
        """True once the service answers its protocol, not just its port."""
        return port_open(self.port)

    def after_ready(self) -> None:
        """Idempotent set-up that needs the running service (topics, vhosts)."""

    @abstractmethod
    def addresses(self) -> dict[str, str]: ...

    # -- mechanics -------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The pid of our running process, or None. The pid file also names the program, so a pid
        reused by an unrelated process (after a reboot, say) is never taken for ours."""
        try:
            raw_pid, _, program = self.pid_path.read_text().partition("\n")
            pid = int(raw_pid.strip())
        except (OSError, ValueError):
            return None
        try:
            # Reap it if it is our own exited child, so a zombie does not read as alive.
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return None
        except ChildProcessError:
            pass
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        if program.strip() and os.path.basename(program.strip()).encode() not in cmdline:
            return None
        return pid

    def up(self) -> str:
        """Make the service answer; returns 'reused' or 'started'. Raises ServiceError."""
        if self.ready():
            self.after_ready()
            return "reused"
        if self.pid() is not None:
            # Ours, alive, not (yet) answering: wait for it rather than start a second copy.
            self._wait_ready(None)
            return "reused"
        self._wait_ready(self._spawn())
        return "started"

    def start(self) -> str:
        """Start the process unless ours runs or its port answers, without waiting for it (a cluster
        starts all its nodes before any can be ready); then `check_alive` while waiting."""
        if self.pid() is not None or port_open(self.port):
            return "reused"
        self._spawn()
        return "started"

    def check_alive(self) -> None:
        """Raise ServiceError, with its log, if our process is not running."""
        running = self._spawned.poll() is None if self._spawned is not None else self.pid() is not None
        if not running:
            last = tail(self.log_path)
            raise ServiceError(f"{self.name} exited while starting; last lines of {self.log_path}:\n{last}")

    def _spawn(self) -> subprocess.Popen[bytes]:
        if not self.installed():
            self.install()
        self.home.mkdir(parents=True, exist_ok=True)
        self.prepare()
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                self.argv(),
                cwd=self.home,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_path.write_text(f"{proc.pid}\n{self.argv()[0]}")
        self._spawned = proc
        return proc

    def _wait_ready(self, proc: subprocess.Popen[bytes] | None) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise ServiceError(
                    f"{self.name} exited with {proc.returncode} while starting; "
                    f"last lines of {self.log_path}:\n{tail(self.log_path)}"
                )
            if proc is None and self.pid() is None:
                raise ServiceError(
                    f"{self.name} exited while starting; last lines of {self.log_path}:\n{tail(self.log_path)}"
                )
            if self.ready():
                self.after_ready()
                return
            time.sleep(0.25)
        # Not ready in time: stop it, so a later `up` starts clean instead of finding a half-started one.
        self.down(timeout=10)
        raise ServiceError(
            f"{self.name} did not answer on port {self.port} within "
            f"{self.start_timeout:.0f}s; last lines of {self.log_path}:\n{tail(self.log_path)}"
        )

    def down(self, timeout: float = 30.0) -> bool:
        """Stop the process we started (its whole process group). Returns whether one ran."""
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() is None:
                break
            time.sleep(0.2)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.pid_path.unlink(missing_ok=True)
        return True

    def status(self) -> str:
        if self.ready():
            return "up (ours)" if self.pid() else "up (external)"
        return "down"


def which(binary: str) -> str | None:
    return shutil.which(binary)
