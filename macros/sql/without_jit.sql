{#
    The pre-hook of every intermediate, mart and sync model (dbt_project.yml): on
    PostgreSQL, `set local jit = off` for the model's transaction, so its statements are
    not compiled to machine code first.

    Why: PostgreSQL compiles a query with JIT when its estimated cost passes
    `jit_above_cost`, and these models' queries (a dozen unioned staging branches, views
    over JSON) are estimated far above it however few rows they read. Compiling such a
    plan took 3.3 s of a 3.5 s query in a daily tick, and the compiled code did not pay
    for itself on the full build either. At 20 k people and a year (1.25 M webhook
    events, 2026-12-06, 2 rounds each): the full build 72.7-73.1 s with JIT, 63.7-65.3 s
    without; the daily tick 29.8-30.1 s against 26.1-26.3 s (README, "PostgreSQL").
    `set local` ends with the model's transaction, so nothing else on the connection or
    the server changes. Empty on DuckDB and Spark, which have no such setting. Not the
    audience versions: their fingerprints cover their hooks (dbt_project.yml).
#}
{% macro without_jit() %}
    {%- if target.type == 'postgres' -%}
        set local jit = off
    {%- endif -%}
{% endmacro %}
