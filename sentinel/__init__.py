"""What Sentinel's processes share: settings, the event model, telemetry, Kafka propagation, CLI."""
