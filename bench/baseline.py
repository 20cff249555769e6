"""`python -m bench --baseline REF`: the same scenarios on another commit, and each figure as a ratio to it.

Each side runs its own harness in its own tree. The baseline is a git worktree of REF under
`.bench/baseline-<commit>` (kept, and reused by the next run against the same commit), and its
`python -m bench` runs there first with this invocation's other arguments, against the same stack
(SENTINEL_STACK_DIR, SENTINEL_PORT_OFFSET); then this tree's harness runs as usual. Why not drive
the baseline's processes from this tree's harness: how ingest, the bridge and the worker are
started (module paths, command lines, settings) is itself code that changes between commits, and
only the baseline's own `sentinel_local` (or whatever it had) knows how to start its processes.
The cost is that a change to the harness between the two commits is part of the ratio; both
documents are kept whole, so a reader can tell (their `config` sections show how each measured).

The baseline's Python environment: when REF's requirements.txt is this tree's, the baseline runs on
this interpreter (its own modules come first on the path: the working directory and PYTHONPATH are
its tree, and its harness starts its processes with PYTHONPATH set to its tree); otherwise REF's
own `make .venv/.installed` builds a virtualenv in the worktree.

The two sides run one after the other, so the host's drift between them is in every ratio; each
document carries its speed probes (`machine.speed_probe_ms_at_start`, `..._at_end`) to judge it.
A ratio is current / baseline: above 1 is better for throughput and the tracing and hop ratios,
below 1 for latency and memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# The sections of a document whose numeric leaves are figures (report.build_document's keys).
FIGURE_SECTIONS = ("throughput_eps", "tracing_cost_ratio", "latency_ms", "celery_hop", "peak_rss_mb")
# Numeric leaves of those sections that are sizes of the run, not figures.
NOT_FIGURES = ("events", "rounds", "processes")
# Figures where less is better: a ratio below 1 is an improvement.
LOWER_IS_BETTER = ("latency_ms", "peak_rss_mb")
# Floors on the ratio to the baseline (issue 25): figure -> the least ratio that passes.
FLOORS = {"throughput_eps.batched_100.sampled_100": 0.85}
# This invocation's options that are not passed on to the baseline's harness (each takes a value).
OWN_OPTIONS = ("--baseline", "--out")


def figures(document: Mapping[str, Any]) -> dict[str, float]:
    """Every measured figure of a document, by dotted path ("throughput_eps.batched_100.sampled_100").

    Nulls (not measured), lists (rounds, kept in `details`) and the run's sizes are left out."""
    out: dict[str, float] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(f"{prefix}.{key}", inner)
        elif isinstance(value, int | float) and not isinstance(value, bool) and _leaf(prefix) not in NOT_FIGURES:
            out[prefix] = float(value)

    for section in FIGURE_SECTIONS:
        walk(section, document.get(section))
    return out


def _leaf(path: str) -> str:
    return path.rpartition(".")[2]


def compare(current: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each figure measured on either side: both values and current / baseline (null when either
    side lacks it or the baseline's is 0), whether lower is better, and the floor where one applies."""
    ours, theirs = figures(current), figures(baseline)
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(ours.keys() | theirs.keys()):
        now, then = ours.get(path), theirs.get(path)
        entry: dict[str, Any] = {
            "current": now,
            "baseline": then,
            "ratio": round(now / then, 3) if now is not None and then else None,
            "lower_is_better": path.startswith(LOWER_IS_BETTER),
        }
        if path in FLOORS:
            entry["floor"] = FLOORS[path]
            entry["met"] = None if entry["ratio"] is None else entry["ratio"] >= FLOORS[path]
        out[path] = entry
    return out


def ratio_lines(ratios: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per figure for the progress log: this tree's value, the baseline's, and the ratio."""
    lines = ["against the baseline (ratio = current / baseline):"]
    for path, entry in ratios.items():
        now, then, ratio = entry["current"], entry["baseline"], entry["ratio"]
        line = f"  {path}: {_figure(now)} (baseline {_figure(then)})"
        if ratio is not None:
            line += f": {ratio:.3f}x" + (", lower is better" if entry["lower_is_better"] else "")
        if "floor" in entry:
            verdict = {True: "met", False: "missed", None: "not measured"}[entry["met"]]
            line += f" [floor {entry['floor']}: {verdict}]"
        lines.append(line)
    return lines


def _figure(value: float | None) -> str:
    return "not measured" if value is None else f"{value:,}"


def baseline_argv(argv: Sequence[str]) -> list[str]:
    """This invocation's arguments without its own options (`--baseline REF`, `--out DIR`, in
    either the two-word or the `=` form): what the baseline's harness is given."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in OWN_OPTIONS:
            skip = True
        elif not arg.startswith(tuple(f"{option}=" for option in OWN_OPTIONS)):
            out.append(arg)
    return out


def environment(found: Mapping[str, str | None], stack_dir: Path) -> dict[str, str]:
    """The baseline harness's environment: this one, on the same stack, with the variables this
    harness changed for itself (`found`, as tables.use_bench_database returned them) as it found
    them: the baseline's harness points its processes at the bench database itself, and puts back
    what it found."""
    env = {**os.environ, "SENTINEL_STACK_DIR": str(stack_dir)}
    for key, value in found.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def resolve(repo: Path, ref: str) -> str:
    """The full commit id REF names; raises RuntimeError when it names none."""
    found = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if found.returncode != 0:
        raise RuntimeError(f"--baseline {ref}: not a commit of {repo}")
    return found.stdout.strip()


def worktree(repo: Path, commit: str) -> Path:
    """A detached worktree of `commit` under repo/.bench, created on first use and reused after."""
    path = repo / ".bench" / f"baseline-{commit[:12]}"
    if path.exists():
        head = _git(path, "rev-parse", "HEAD", check=False).stdout.strip()
        if head != commit:
            raise RuntimeError(f"{path} exists but is not a worktree of {commit}: remove it (git worktree remove)")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    _git(repo, "worktree", "add", "--detach", str(path), commit)
    return path


def interpreter(repo: Path, tree: Path) -> Path:
    """The Python that runs the baseline: this one when the baseline's runtime requirements are the
    same as this tree's, else a virtualenv that the baseline's own Makefile builds in its tree."""
    if (tree / "requirements.txt").read_bytes() == (repo / "requirements.txt").read_bytes():
        return Path(sys.executable)
    subprocess.run(["make", ".venv/.installed"], cwd=tree, check=True, stdout=sys.stderr)
    return tree / ".venv" / "bin" / "python"


def run(ref: str, argv: Sequence[str], *, repo: Path, out: Path, env: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """Run the baseline's harness on REF with `argv` (already without this run's own options);
    returns the commit id and the document it printed. Blocks for as long as that run takes; its
    progress goes to this process's stderr. Raises RuntimeError when it fails."""
    commit = resolve(repo, ref)
    tree = worktree(repo, commit)
    python = interpreter(repo, tree)
    out.mkdir(parents=True, exist_ok=True)
    command = [str(python), "-m", "bench", *argv, "--out", str(out)]
    print(f"[bench] baseline {ref} ({commit[:12]}) in {tree}: {' '.join(command)}", file=sys.stderr, flush=True)
    child_env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(tree), env.get("PYTHONPATH", "")) if p)}
    done = subprocess.run(command, cwd=tree, env=child_env, stdout=subprocess.PIPE, text=True, check=False)
    try:
        document = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"the baseline's harness exited {done.returncode} without a JSON document") from exc
    return commit, document


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=check)
