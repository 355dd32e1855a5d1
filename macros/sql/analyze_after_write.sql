{#
    The post-hook of every intermediate, mart and sync model (dbt_project.yml): on
    PostgreSQL, `analyze` the table the model just wrote, so that the models read from it
    next are planned from its real size and keys. (Not the audience versions: see
    dbt_project.yml.)

    Why: PostgreSQL plans from statistics that only ANALYZE (or autovacuum, a minute or
    more later) gathers, and a table dbt has just created has none. The next model of the
    same build is then planned blind: `dim_people` joins five per-person tables by
    person_id, and with no statistics PostgreSQL expects 200 distinct people in each and
    billions of joined rows, and hashes them in thousands of batches on disk. At 20 k
    people that query took 8.9 s; after ANALYZE, 43 ms. ANALYZE reads a sample (at most
    30,000 rows), so it costs milliseconds on small tables and a fraction of a second on
    the largest. DuckDB keeps its statistics as it writes, and Spark's session tables are
    rebuilt whole; on them the hook is empty and dbt runs nothing.

    Views have no statistics of their own and ephemeral models run no hooks.
#}
{% macro analyze_after_write() %}
    {%- if target.type == 'postgres'
        and config.get('materialized') in ('table', 'incremental') -%}
        analyze {{ this }}
    {%- endif -%}
{% endmacro %}
