"""Delivery: every change event the hub accepts reaches every target that subscribes to it.

Each target reads the outbox lane by lane behind a cursor (no row per event on
the happy path; :mod:`hub.delivery.lanes`); workers on any node lease lanes with
``SELECT ... FOR UPDATE SKIP LOCKED``. What does not go becomes a delivery row
(:mod:`hub.delivery.queue`): transient failures retried with backoff behind a
per-target circuit breaker, permanent failures parked as dead letters that an
operator can replay or cancel, a person's later events held behind them.
See docs/delivery.md.
"""
