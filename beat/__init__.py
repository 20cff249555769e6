"""Beat: the periodic jobs (schedule in beat.schedule, tasks in beat.tasks), run as exactly one process."""
