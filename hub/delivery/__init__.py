"""Delivery: every change event the hub accepts reaches every target that subscribes to it.

The outbox is fanned out into one delivery row per (event, target); workers on
any node claim rows with ``SELECT ... FOR UPDATE SKIP LOCKED``, keep order per
ordering key, push batches through the target's adapter, retry transient
failures with backoff behind a per-target circuit breaker, and park permanent
failures as dead letters that an operator can replay or cancel.
See docs/delivery.md.
"""
