"""`audiences sync segment`: diff audience membership against sent state, send the changes.

Read order: `command.py` (options, exit codes) → `service.py` (one run) → `plan.py` (the
diff in SQL) → `guards.py` → `client.py` and `workers.py` (delivery through
segment-analytics-python) → `outcomes.py` (what a sent group's results mean) →
`outbox.py` (the only module that reads or writes the sync's tables, with their schema
version and migrations) and `lock.py`.
"""
