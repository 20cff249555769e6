"""The benchmark harness: `python -m bench [--quick]` measures the pipeline on the real services.

__main__.py   the command line and the run: stack up, each tracing configuration, its scenarios
scenarios.py  sustained throughput, latency at a fixed offered rate, the warm-up; quick and full sizes
pipeline.py   restart ingest, bridge and worker with a tracing configuration, and put them back after
load.py       the HTTP load generator: separate processes, batched or single-event posts, max speed or fixed rate
observe.py    when rows become visible (probe ids by primary key, exact counts), Kafka lag and drain
direct.py     the direct baseline (Kafka -> clickhouse-driver, no Celery, no tracing) against the pipeline
rss.py        peak resident memory (VmHWM) of each process tree
cpu.py        CPU seconds per role during a scenario, to say which stage limits a figure
report.py     the JSON document, target evaluation and the PNG chart
baseline.py   --baseline REF: the same run on another commit's worktree, and each figure's ratio to it
"""
