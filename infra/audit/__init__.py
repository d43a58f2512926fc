"""Tamper evidence for the event log: per-aggregate hash chains, signed checkpoints, verification.

* :mod:`infra.audit.chain`: the hash of a stored event, chained per aggregate, and the
  recorders' bounded cache of each aggregate's last hash.
* :mod:`infra.audit.sql`: the audit tables and queries on SQLite and PostgreSQL.
* :mod:`infra.audit.checkpoints`: signed checkpoints of the notification log (HMAC, key
  outside the event store).
* :mod:`infra.audit.verify`: the walk that names the first changed, missing, reordered or
  inserted event, or a truncated log.
"""
