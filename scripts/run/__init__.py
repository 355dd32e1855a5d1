"""`audiences run`: one scheduled tick (load → dbt build → sync) under one lock."""
