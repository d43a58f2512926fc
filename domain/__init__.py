"""The VIP domain: aggregates, their events, policies and pure rules.

Imports only the standard library and ``eventsourcing.domain``.
"""
