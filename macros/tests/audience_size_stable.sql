{#
    Data-health test: no audience (all versions and arms together, so a version change
    is no jump) changed its size by more than `max_change_share` of its previous size
    between the previous day and its latest day, or dropped to zero. With a daily build
    this compares two builds. An audience below `min_members` the day before is judged
    only on dropping to zero (small audiences swing). For rpt_audience_sizes_daily.
    Fails with the audiences that jumped or emptied.
#}
{% test audience_size_stable(model, max_change_share=0.5, min_members=50) %}

with

sizes as (

    select
        audience_key,
        day,
        sum(members) as members

    from {{ model }}

    group by audience_key, day

),

latest as (

    select
        audience_key,
        max(day) as latest_day

    from sizes

    group by audience_key

),

compared as (

    select
        latest.audience_key,
        latest.latest_day,
        current_size.members as members,
        coalesce(previous_size.members, 0) as previous_members

    from latest

    inner join sizes as current_size
        on
            latest.audience_key = current_size.audience_key
            and latest.latest_day = current_size.day

    left join sizes as previous_size
        on
            latest.audience_key = previous_size.audience_key
            and {{ dbt.dateadd('day', 1, 'previous_size.day') }} = latest.latest_day

)

select * from compared
where
    (previous_members > 0 and members = 0)
    or (
        previous_members >= {{ min_members }}
        and (
            members - previous_members > {{ max_change_share }} * previous_members
            or previous_members - members > {{ max_change_share }} * previous_members
        )
    )

{% endtest %}
