"""The telemetry service's domain: pure functions over plain values, no I/O.

``validation`` (is this reading acceptable?), ``readings`` (identity of a reading and of the events that carry
it), ``windows`` (window math and exact per-window statistics), ``alerts`` (edge-triggered thresholds),
``settings`` (configuration from the environment), ``store`` (where each thing lives in Firestore).
"""
