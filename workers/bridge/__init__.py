"""The Kafka -> Celery bridge.

consumer.py    the loop: poll, trace and decode each message, chunk, dispatch, commit
decode.py      message -> event, or InvalidMessage (-> dead letter)
chunker.py     per-partition chunks bounded by count and time
dispatcher.py  chunks -> Celery tasks, bounded in flight; acks back from workers
watermark.py   the highest offset below which everything is stored or dead-lettered
"""
