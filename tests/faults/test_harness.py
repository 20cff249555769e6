"""The harness's own logic, without services: the commit rule and the published table."""

from __future__ import annotations

from pathlib import Path

from tests.faults.harness import DRAIN_TIMEOUT_S, Figures, Sample, TopicReadback, checked_samples, commit_violations
from tests.faults.report import BEGIN, END, publish


def _topic() -> TopicReadback:
    # This run wrote offsets 10..19 of partition 0; offset 15 went to the dead-letter topic.
    return TopicReadback(offsets={0: list(range(10, 20))}, dead_lettered={0: [15]})


def test_a_commit_past_an_unstored_message_is_a_violation() -> None:
    samples = [
        Sample(1.0, {0: 12}, {0: 2}),  # 10 and 11 stored: fine
        Sample(2.0, {0: 17}, {0: 6}),  # 10..16 less the dead letter: 6 needed, 6 stored
        Sample(3.0, {0: 20}, {0: 8}),  # 9 needed, 8 stored
    ]
    violations = commit_violations(samples, _topic())
    assert len(violations) == 1 and "committed 20, 9 message(s)" in violations[0]
    assert checked_samples(samples, _topic()) == 3


def test_commits_below_the_run_prove_nothing_and_break_nothing() -> None:
    samples = [Sample(1.0, {0: 5, 1: -1001}, {})]
    assert commit_violations(samples, _topic()) == []
    assert checked_samples(samples, _topic()) == 0


def test_an_event_id_at_two_offsets_may_be_one_row() -> None:
    topic = TopicReadback(offsets={0: [10, 11, 12]}, aliased={0: [10, 12]})
    assert commit_violations([Sample(1.0, {0: 13}, {0: 2})], topic) == []
    assert commit_violations([Sample(1.0, {0: 13}, {0: 0})], topic) != []


def test_publish_replaces_only_the_rows_that_ran(tmp_path: Path) -> None:
    doc = tmp_path / "reliability.md"
    doc.write_text(f"# Reliability\n\nprose\n\n{BEGIN}\n| x |\n{END}\n\n## Hostile input\n\nkept\n")
    first = Figures("Redis restarted", 3000, sent=3000, accepted=3000, stored=3000, drain_s=1.5)
    other = Figures("RabbitMQ restarted", 3000, sent=3000, accepted=3000, stored=3000, drain_s=0.5)
    publish([first, other], doc)
    again = Figures("Redis restarted", 3000, sent=3000, accepted=2990, lost=10, drain_s=None, failures=["lost"])
    full = Figures("Redis restarted", 20000, sent=20000, accepted=20000, stored=20000, drain_s=2.0)
    publish([again, full], doc)
    text = doc.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| Redis") or line.startswith("| RabbitMQ")]
    assert len(rows) == 3
    assert rows[0].startswith("| Redis restarted | 20000 |")  # full scale first
    assert "| 10 |" in rows[1] and "FAIL: lost" in rows[1] and f"> {DRAIN_TIMEOUT_S:.0f} s" in rows[1]
    assert rows[2].startswith("| RabbitMQ restarted | 3000 | 3000 | 0 | 0 | 0.5 s | pass | 3000 |")
    assert text.startswith("# Reliability\n\nprose\n") and text.endswith("## Hostile input\n\nkept\n")


def test_a_fault_s_own_figures_are_shown_beside_its_result(tmp_path: Path) -> None:
    doc = tmp_path / "reliability.md"
    figures = Figures("proxy SIGKILLed", 3000, sent=203, accepted=203, stored=203, drain_s=4.0, details="200 calls | 0")
    publish([figures], doc)
    [line] = [line for line in doc.read_text().splitlines() if line.startswith("| proxy")]
    assert "| pass (200 calls / 0) | 3000 |" in line
    assert figures.line().endswith("| 200 calls | 0")
