"""Beat: the periodic jobs, run as exactly one process (`celery -A beat.app beat`): the schedule in
beat.schedule, set on the Celery app by beat.app; the tasks in beat.tasks, which the worker runs."""
