"""ClickHouse: the schema (created by `migrate()` at process start) and the batch writer."""
