"""Read models as pure folds over event envelopes.

A view says which rows an event touches (``keys``) and how each row changes
(``fold(row, event, key) -> row``; ``None`` deletes). Rows are JSON-ready
dicts with instants as UTC ISO strings, so the embedded runner (SQLite) and
the stream processors (Faust tables) store them the same way and give the
same answers. Queries over the rows live in ``projections.queries``.
"""
