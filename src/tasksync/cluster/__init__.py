"""The queue-backed cluster mode: many boards, many machines (Dramatiq, Redis, PostgreSQL).

Installed with ``pip install 'tasksync[cluster]'``; see ``docs/scaling.md``.
"""
