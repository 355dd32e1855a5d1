{#
    Lift of a treatment arm over a holdout arm, with 95 % intervals, as one SELECT over
    `relation` (a table, CTE or subquery alias) that has treatment_members,
    holdout_members, treatment_converters and holdout_converters. Every other column of
    `relation` passes through. rpt_audience_lift and the calibration test
    (tests/dbt/test_lift_calibration.py) both render this macro, so the test proves the
    SQL that ships.

    Methods (why: both stay calibrated at small counts and low base rates, where the
    textbook Wald interval undercovers and can leave [0, 1]):
    - absolute lift (treatment rate - holdout rate): Newcombe's hybrid score interval
      (Newcombe 1998, method 10), built from each arm's Wilson score interval;
    - relative lift (treatment rate / holdout rate - 1): the adjusted log interval for a
      ratio of proportions (Katz's log interval with 0.5 added to each arm's converters
      and to its size: Pettigrew et al. 1986's form of Walter's 1975 adjustment). Plain
      Katz over-covers (97-98 %) when the holdout has a handful of converters; the
      adjustment brings it back to 95 % and never divides by zero. Null when the holdout
      has no converter (the ratio is undefined). Where both arms convert every member
      the interval is the single point 0 (no spread left in either arm's 0.5-adjusted
      cells); rpt_audience_lift's verdict reads the absolute interval, which keeps its
      width there;
    - minimum detectable effect: the absolute difference a two-sided 5 % test detects with
      80 % power at these arm sizes and the pooled rate, (z_.975 + z_.80) * sqrt(p (1 - p)
      (1/n_t + 1/n_h)).
    Rates and intervals are null for an empty arm; the caller decides what is conclusive.
#}
{% macro audience_lift_statistics(relation) -%}
    {%- set z = 1.959963984540054 -%}
    {%- set z_squared = z * z -%}
    {%- set power_z = z + 0.8416212335729143 -%}
    {%- set double = type_double() -%}

select
    wilson.*,
    wilson.treatment_conversion_rate
    - wilson.holdout_conversion_rate as absolute_lift,
    wilson.treatment_conversion_rate
    - wilson.holdout_conversion_rate
    - sqrt(
        (wilson.treatment_conversion_rate - wilson.treatment_wilson_lower)
        * (wilson.treatment_conversion_rate - wilson.treatment_wilson_lower)
        + (wilson.holdout_wilson_upper - wilson.holdout_conversion_rate)
        * (wilson.holdout_wilson_upper - wilson.holdout_conversion_rate)
    ) as absolute_lift_ci_lower,
    wilson.treatment_conversion_rate
    - wilson.holdout_conversion_rate
    + sqrt(
        (wilson.treatment_wilson_upper - wilson.treatment_conversion_rate)
        * (wilson.treatment_wilson_upper - wilson.treatment_conversion_rate)
        + (wilson.holdout_conversion_rate - wilson.holdout_wilson_lower)
        * (wilson.holdout_conversion_rate - wilson.holdout_wilson_lower)
    ) as absolute_lift_ci_upper,
    case
        when wilson.holdout_converters > 0
            then wilson.treatment_conversion_rate / wilson.holdout_conversion_rate - 1
    end as relative_lift,
    case
        when wilson.holdout_converters > 0
            then exp(wilson.adjusted_log_ratio - {{ z }} * wilson.adjusted_log_standard_error) - 1
    end as relative_lift_ci_lower,
    case
        when wilson.holdout_converters > 0
            then exp(wilson.adjusted_log_ratio + {{ z }} * wilson.adjusted_log_standard_error) - 1
    end as relative_lift_ci_upper,
    case
        when wilson.pooled_rate > 0 and wilson.pooled_rate < 1
            then {{ power_z }} * sqrt(
                wilson.pooled_rate * (1 - wilson.pooled_rate)
                * (1 / wilson.treatment_n + 1 / wilson.holdout_n)
            )
    end as minimum_detectable_effect

from (

    select
        rates.*,
        (
            rates.treatment_conversion_rate
            + {{ z_squared }} / (2 * rates.treatment_n)
            - {{ z }} * sqrt(
                rates.treatment_conversion_rate * (1 - rates.treatment_conversion_rate)
                / rates.treatment_n
                + {{ z_squared }}
                / (4 * rates.treatment_n * rates.treatment_n)
            )
        ) / (1 + {{ z_squared }} / rates.treatment_n) as treatment_wilson_lower,
        (
            rates.treatment_conversion_rate
            + {{ z_squared }} / (2 * rates.treatment_n)
            + {{ z }} * sqrt(
                rates.treatment_conversion_rate * (1 - rates.treatment_conversion_rate)
                / rates.treatment_n
                + {{ z_squared }}
                / (4 * rates.treatment_n * rates.treatment_n)
            )
        ) / (1 + {{ z_squared }} / rates.treatment_n) as treatment_wilson_upper,
        (
            rates.holdout_conversion_rate
            + {{ z_squared }} / (2 * rates.holdout_n)
            - {{ z }} * sqrt(
                rates.holdout_conversion_rate * (1 - rates.holdout_conversion_rate)
                / rates.holdout_n
                + {{ z_squared }}
                / (4 * rates.holdout_n * rates.holdout_n)
            )
        ) / (1 + {{ z_squared }} / rates.holdout_n) as holdout_wilson_lower,
        (
            rates.holdout_conversion_rate
            + {{ z_squared }} / (2 * rates.holdout_n)
            + {{ z }} * sqrt(
                rates.holdout_conversion_rate * (1 - rates.holdout_conversion_rate)
                / rates.holdout_n
                + {{ z_squared }}
                / (4 * rates.holdout_n * rates.holdout_n)
            )
        ) / (1 + {{ z_squared }} / rates.holdout_n) as holdout_wilson_upper,
        {# Adjusted log: 0.5 added to converters and size, always (see the header). #}
        ln(
            ((rates.treatment_x + 0.5) / (rates.treatment_n + 0.5))
            / ((rates.holdout_x + 0.5) / (rates.holdout_n + 0.5))
        ) as adjusted_log_ratio,
        sqrt(
            1 / (rates.treatment_x + 0.5) - 1 / (rates.treatment_n + 0.5)
            + 1 / (rates.holdout_x + 0.5) - 1 / (rates.holdout_n + 0.5)
        ) as adjusted_log_standard_error,
        (rates.treatment_x + rates.holdout_x)
        / (rates.treatment_n + rates.holdout_n) as pooled_rate

    from (

        select
            counts.*,
            {# Sizes as doubles (integer division truncates on PostgreSQL); an empty
               arm is null, so everything built on it is null instead of an error. #}
            cast(nullif(counts.treatment_members, 0) as {{ double }}) as treatment_n,
            cast(nullif(counts.holdout_members, 0) as {{ double }}) as holdout_n,
            cast(counts.treatment_converters as {{ double }}) as treatment_x,
            cast(counts.holdout_converters as {{ double }}) as holdout_x,
            cast(counts.treatment_converters as {{ double }})
            / cast(nullif(counts.treatment_members, 0) as {{ double }})
            as treatment_conversion_rate,
            cast(counts.holdout_converters as {{ double }})
            / cast(nullif(counts.holdout_members, 0) as {{ double }})
            as holdout_conversion_rate

        from {{ relation }} as counts

    ) as rates

) as wilson
{%- endmacro %}
