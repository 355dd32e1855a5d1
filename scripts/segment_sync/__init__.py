"""`audiences sync segment`: diff audience membership against sent state, send the changes.

Read order: `command.py` (options, exit codes) → `service.py` (one run) → `plan.py` (the
diff in SQL) → `guards.py` → `client.py` (delivery through segment-analytics-python) →
`state.py` (tables) and `lock.py`.
"""
