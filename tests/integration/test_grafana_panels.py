"""Every ClickHouse panel of the k8s dashboard runs on the real ClickHouse and finds the rows of a
sample written by the worker's writer. Grafana's macros and variables are expanded as Grafana
and the ClickHouse plugin do ($__timeFilter(c) -> c >= toDateTime(from) AND c <= toDateTime(to))."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.audit_sample import store_audit_sample
from workers.clickhouse.client import new_client

DASHBOARD = Path(__file__).resolve().parents[2] / "k8s" / "base" / "config" / "grafana" / "sentinel-pipeline.json"


def _panels() -> list[dict]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for top in dashboard["panels"] for p in (top, *top.get("panels", []))]
    return [p for p in panels if (p.get("datasource") or {}).get("uid") == "clickhouse"]


def expand(sql: str, *, since: int, until: int, variables: dict[str, str]) -> str:
    sql = re.sub(r"\$__timeFilter\((\w+)\)", rf"\1 >= toDateTime({since}) AND \1 <= toDateTime({until})", sql)
    sql = sql.replace("$__fromTime", f"toDateTime({since})").replace("$__toTime", f"toDateTime({until})")
    for name, value in variables.items():
        sql = sql.replace(f"${{{name}}}", value.replace("'", "\\'"))
    assert "$" not in sql, f"a macro or variable this test does not know: {sql}"
    return sql


@pytest.fixture(scope="module")
def sample() -> dict[str, object]:
    return store_audit_sample()


@pytest.mark.parametrize("panel", _panels(), ids=lambda p: p["title"][:40])
def test_the_panel_sql_runs_and_finds_the_sample(panel: dict, sample: dict) -> None:
    now = int(time.time())
    sql = expand(
        panel["targets"][0]["rawSql"],
        since=now - 3600,
        until=now + 60,
        variables={"server": str(sample["server"]), "session": str(sample["session"])},
    )
    rows, columns = new_client().execute(sql, with_column_types=True)
    assert rows, f"{panel['title']!r} found nothing of the sample"
    names = [name for name, _ in columns]
    for override in panel["fieldConfig"]["overrides"]:
        field = override["matcher"]["options"]
        assert field in names, f"{panel['title']!r} links {field}, which its SQL does not return"
        traces = {str(row[names.index(field)]) for row in rows}
        if "Recent events" not in panel["title"]:  # the newest rows of everyone, not only the sample's
            assert traces & set(sample["traces"]), f"{panel['title']!r}: {field} holds none of the sample's traces"
