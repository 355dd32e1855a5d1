with

source as (

    select * from {{ source('shop', 'orders') }}

),

renamed as (

    select
        ---------- ids
        order_id,
        customer_id,

        ---------- numerics
        total_cents,

        ---------- timestamps
        ordered_at,
        updated_at,
        _loaded_at as loaded_at,

        ---------- strings
        lower(trim(email)) as email,
        lower(status) as order_status,
        upper(currency) as currency,

        ---------- booleans
        lower(status) = 'cancelled' as is_cancelled,
        lower(status) = 'refunded' as is_refunded

    from source

)

select * from renamed
