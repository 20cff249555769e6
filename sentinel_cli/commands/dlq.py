"""List or replay dead letters (replaying twice is safe)."""

from __future__ import annotations

import argparse
import json

from sentinel import settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["list", "replay"])
    parser.add_argument("--reason", default=None, help="only records whose reason contains this text")
    parser.add_argument("--from", dest="start", type=int, default=None, help="first DLQ offset (inclusive)")
    parser.add_argument("--to", dest="end", type=int, default=None, help="last DLQ offset (inclusive)")
    parser.add_argument("--limit", type=int, default=0, help="list at most this many")


def run(args: argparse.Namespace) -> int:
    from workers.redrive import read_dead_letters, replay

    records = read_dead_letters(reason=args.reason, start=args.start, end=args.end)
    if args.action == "list":
        for count, record in enumerate(records, start=1):
            print(json.dumps(record.summary()))
            if args.limit and count >= args.limit:
                break
        return 0
    sent = replay(records)
    print(json.dumps({"replayed": sent, "to": settings.EVENTS_TOPIC}))
    return 0
