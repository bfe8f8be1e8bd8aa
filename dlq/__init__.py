"""``python -m dlq``: list, show, replay and discard what failed (dead letters and permanent failures).

Both kinds of record live in the Firestore collection ``failures`` (schema: eventkit/failures.py). Modules:
``target`` (which project and emulators to talk to) and ``cli`` (the commands). Reading, updating and replaying
records is eventkit's (``eventkit.failure_records``, ``eventkit.replay``): the ``console`` service's buttons run
the same code. Operator guide:
docs/dead-letters.md.
"""
