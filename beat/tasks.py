"""Periodic tasks that beat schedules."""
