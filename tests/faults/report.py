"""Publish the fault suite's figures: the table in docs/reliability.md, updated row by row.

The table sits between two markers; everything else in the file is prose and is left alone. A row
is keyed by its first cell (the fault or input class) and its scale, so a run replaces only the rows
of the faults it ran at the scale it ran them, and rows written by anything else are kept.
"""

from __future__ import annotations

import time
from pathlib import Path

from sentinel import settings
from tests.faults.harness import DRAIN_TIMEOUT_S, Figures

DOC = settings.REPO_ROOT / "docs" / "reliability.md"
BEGIN = "<!-- reliability-table:begin (written by tests/faults; rows keyed by fault and scale) -->"
END = "<!-- reliability-table:end -->"
HEADER = (
    "| fault or input class | events | accepted | lost | duplicates | drain time | result | scale | date |",
    "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |",
)


def row(figures: Figures, date: str) -> str:
    if figures.error:
        lost = duplicates = drain = "—"
    else:
        lost, duplicates = str(figures.lost), str(figures.duplicates)
        drain = f"{figures.drain_s:.1f} s" if figures.drain_s is not None else f"> {DRAIN_TIMEOUT_S:.0f} s"
    result = " ".join(figures.result.split("\n", 1)[0].split())
    if figures.details:
        result = f"{result} ({figures.details})"
    result = result.replace("|", "/")
    result = result if len(result) <= 160 else result[:157] + "..."
    cells = [figures.fault, str(figures.sent), str(figures.accepted), lost, duplicates, drain, result]
    return "| " + " | ".join([*cells, str(figures.scale), date]) + " |"


def _key(line: str) -> tuple[str, str]:
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    return cells[0], cells[7] if len(cells) > 7 else ""


def _scale(line: str) -> int:
    scale = _key(line)[1]
    return -int(scale) if scale.isdigit() else 0


def publish(results: list[Figures], path: Path = DOC) -> None:
    """Write `results` into the table of `path`, creating the file or the table if missing."""
    if not results:
        return
    date = time.strftime("%Y-%m-%d", time.gmtime())
    text = path.read_text() if path.exists() else "# Reliability\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        body, tail = rest.split(END, 1)
        rows = [line for line in body.splitlines() if line.startswith("|") and line not in HEADER]
    else:
        head, tail, rows = text.rstrip("\n") + "\n\n", "\n", []
    fresh = {(f.fault, str(f.scale)): row(f, date) for f in results}
    updated = [fresh.pop(_key(line), line) for line in rows]
    updated.extend(fresh.values())
    updated.sort(key=_scale)  # full scale first; stable, so the order of the faults is kept
    table = "\n".join([*HEADER, *updated])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
