"""Render a trace as an indented span tree, with linked traces (the batch insert) under the span
they link to. Used by `sentinel trace` and the README's run command."""

from __future__ import annotations

from collections import defaultdict

from sentinel_cli.jaeger import Span


def render(spans: list[Span], linked: dict[str, list[Span]] | None = None, *, origin_us: int | None = None) -> str:
    """Lines of the span tree; `linked` maps a span id to a trace whose spans link to it.

    Offsets (+ms) are from `origin_us` (default: the trace's first span), so a linked trace
    rendered inside another lines up with it in time.
    """
    if not spans:
        return "(no spans)"
    origin = min(s.start_us for s in spans) if origin_us is None else origin_us
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[Span]] = defaultdict(list)
    for span in sorted(spans, key=lambda s: s.start_us):
        children[span.parent_id if span.parent_id in ids else None].append(span)
    lines: list[str] = []

    def walk(span: Span, prefix: str, last: bool) -> None:
        lines.append(
            f"{prefix}{'└─ ' if last else '├─ '}{span.name}  [{span.service}]  "
            f"{span.duration_us / 1000:.2f} ms  (+{(span.start_us - origin) / 1000:.1f} ms)"
        )
        inner = prefix + ("   " if last else "│  ")
        kids = children.get(span.span_id, [])
        extra = (linked or {}).get(span.span_id)
        for i, kid in enumerate(kids):
            walk(kid, inner, i == len(kids) - 1 and not extra)
        if extra:
            lines.append(f"{inner}└─ ⇢ linked from trace {extra[0].trace_id}:")
            lines.extend(inner + "   " + line for line in render(extra, origin_us=origin).splitlines())

    roots = children[None]
    for i, root in enumerate(roots):
        walk(root, "", i == len(roots) - 1)
    return "\n".join(lines)
