"""File and API loaders: land raw source data in `raw_*` schemas, idempotently, nothing lost."""
