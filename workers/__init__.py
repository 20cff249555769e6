"""Workers: the Kafka->Celery bridge (workers.bridge), the Celery app and its insert task, ClickHouse."""
