"""Benchmarks of teamaccess against the floor the hardware and SQLite set.

Run ``python -m benchmarks`` (full) or ``python -m benchmarks --quick`` (CI smoke size).
See ``docs/performance.md`` for what is measured and the last full run's table.
"""
