"""The benchmark harness: `python -m bench [--quick]` measures the pipeline on the real services.

__main__.py  the command line and the run: stack up, each tracing configuration, each scenario
pipeline.py  restart ingest, bridge and worker with a tracing configuration; wait for the pipeline to drain
load.py      the HTTP load generator: separate processes, batched or single-event posts, max speed or fixed rate
observe.py   when rows become visible in ClickHouse: probe ids polled by primary key, then an exact count
direct.py    the direct baseline (Kafka -> clickhouse-driver, no Celery, no tracing) against the pipeline
rss.py       peak resident memory (VmHWM) of each process tree
report.py    the JSON document, target evaluation and the PNG chart
"""
