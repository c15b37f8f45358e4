"""gunicorn reads this file from the working directory on every start.

Only the multiprocess metrics need it: a worker that exits leaves files
behind, and its live gauges must stop counting.
"""


def child_exit(server, worker):
    from ops.metrics import mark_process_dead

    mark_process_dead(worker.pid)
