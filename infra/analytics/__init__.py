"""Analytics outputs: the log and the read models as columnar files."""
