"""Destroying a member's key is one transaction: never a deleted key left unmarked as destroyed."""
from __future__ import annotations

import sqlite3

import pytest

from infra.stores.pii import KeyStore


def test_a_destruction_that_fails_halfway_leaves_the_key_as_it_was(tmp_path):
    """Were the delete and the mark two transactions, a failure between them would leave a member
    with no key and no mark, and the next seal would make a fresh key for an erased member."""
    store = KeyStore(tmp_path / "keys.db", create=True)
    key = store.key("M1", create=True)
    store.DESTROYED = "no_such_table"   # the mark fails after the delete ran
    with pytest.raises(sqlite3.OperationalError):
        store.destroy("M1")
    store.DESTROYED = KeyStore.DESTROYED
    assert store.key("M1") == key and not store.is_destroyed("M1")
    assert store.destroy("M1") and store.key("M1") is None and store.is_destroyed("M1")
    store.close()
