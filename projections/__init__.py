"""Read models as pure folds over event envelopes.

A view (``projections.view.View``) says which rows an event touches
(``keys``) and how each row changes (``fold(row, event, key) -> row``;
``None`` deletes). Rows are JSON-ready dicts with instants as UTC ISO
strings, so every keyed store holds them alike (the embedded runner's read
store and the stream processors' store, each on SQLite or PostgreSQL) and
gives the same answers. Queries over the rows live in ``projections.queries``.
"""
