{#
    The lower median of `expression` as an aggregate: the middle value, or the lower of
    the two middle values for an even count (percentile_disc(0.5), an actual value). For
    a baseline that only judges drops it is the robust choice: with 4 baseline weeks, two
    of them flash-sale days (every 16-24 days, so sometimes the same weekday 3 weeks
    apart) would pull the ordinary median halfway to the sale and make a normal day look
    like a drop. Nulls are ignored.
#}
{% macro lower_median(expression) -%}
    percentile_disc(0.5) within group (order by {{ expression }})
{%- endmacro %}
