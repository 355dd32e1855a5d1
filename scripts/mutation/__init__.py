"""`make mutate`: mutation testing of the modules where a bug loses data or trust.

Python areas go through mutmut (`python_areas.py`); the SQL gets a small operator-swap
runner of our own (`sql_mutants.py`). Both work on scratch copies under build/mutation/,
never on the checkout, and both report into benchmarks/mutation.md.
"""
