{#
    The first on-run-start hook (dbt_project.yml): on DuckDB, when the environment variable
    AUDIENCES_DUCKDB_MAX_VACUUM_TASKS holds a whole number, `set global max_vacuum_tasks`
    to it for this dbt process, before any model writes. `audiences run` sets 0 for the
    ticks between its once-a-day storage vacuums (scripts/run/storage_vacuum.py says why);
    unset, DuckDB keeps its own default (100) and the hook is empty.

    Why a hook and not profiles.yml's config_options, where the other DuckDB settings are:
    dbt hashes the profile's config_options into its partial-parse state, so a value that
    differs from the last command's makes dbt parse the whole project again (4 s of a
    14 s tick on a 2-core machine, twice a day: the vacuuming tick and the next). Read
    only when the hook runs, never at parse time, for the same reason
    (macros/tests/unique_new_keys.sql reads its variable the same way). Empty on
    PostgreSQL (autovacuum) and Spark.
#}
{% macro storage_vacuum_setting() %}
    {%- set tasks = env_var('AUDIENCES_DUCKDB_MAX_VACUUM_TASKS', '') if execute else '' -%}
    {%- if tasks and target.type == 'duckdb' -%}
        {#- Parsed, never pasted: the value ends up inside SQL. -#}
        {%- if not modules.re.fullmatch('\\d{1,9}', tasks) -%}
            {{ exceptions.raise_compiler_error(
                "AUDIENCES_DUCKDB_MAX_VACUUM_TASKS must be a whole number such as 0, not '"
                ~ tasks ~ "'"
            ) }}
        {%- endif -%}
        set global max_vacuum_tasks = {{ tasks | int }}
    {%- endif -%}
{% endmacro %}
