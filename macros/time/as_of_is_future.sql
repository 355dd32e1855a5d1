{#
    True when `as_of` lies ahead of the run's real start by more than
    `as_of_future_skew_minutes` (clock skew between the scheduler and the warehouse).
    Such a build is a what-if: models that keep history must not write it, because a
    stint closed "in 2030" would stop every later, real build from appending anything.
#}
{% macro as_of_is_future() -%}
    {%- set skew = modules.datetime.timedelta(
        minutes=var('as_of_future_skew_minutes', 5) | int
    ) -%}
    {%- set now = run_started_at.astimezone(modules.pytz.utc).replace(tzinfo=none) -%}
    {{ return(as_of_datetime() > now + skew) }}
{%- endmacro %}
