"""`make test-spark`: build the dbt project on Spark and compare memberships with DuckDB."""
