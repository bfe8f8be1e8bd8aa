"""``python -m dlq``: list, show, replay and discard what failed (dead letters and permanent failures).

Both kinds of record live in the Firestore collection ``failures`` (schema: eventkit/failures.py). Modules:
``target`` (which project and emulators to talk to), ``records`` (reading and updating records), ``replay``
(republishing a record's message to its original topic), ``cli`` (the commands). Operator guide:
docs/dead-letters.md.
"""
