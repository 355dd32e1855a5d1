{#
    What is wrong with one audience's `meta.audience` in models/audiences/_audiences.yml, as
    a list of messages naming the audience and the key (empty when it is valid). Meta reaches
    SQL (dim_audiences, the holdout split, the ledger's exit reasons), so each value must be
    what it claims: holdout_share a number in [0, 0.5] (more than half held out leaves
    nothing to measure against), is_synced a boolean, segment_calls one of identify, track
    or both, conversion_window_days whole days from 1 to 365, exit_reasons and
    unsubscribed_channels lists from their vocabularies, changelog entries with an integer
    version and an ISO date. audience_registry() stops the build on any problem and
    `audiences versions check` reports them.
#}
{% macro audience_meta_problems(audience_key, meta) -%}
    {%- set problems = [] -%}
    {%- set where = "audience " ~ audience_key ~ ": meta.audience." -%}
    {%- set exit_reasons = ['purchased', 'unsubscribed', 'suppressed'] -%}
    {%- set channels = ['email', 'sms'] -%}

    {%- set share = meta.get('holdout_share', 0) -%}
    {%- if share is boolean or share is not number or share < 0 or share > 0.5 -%}
        {%- do problems.append(where ~ "holdout_share must be a number from 0 to 0.5, got "
            ~ share) -%}
    {%- endif -%}

    {%- for key in ['is_synced'] if key in meta and meta[key] is not boolean -%}
        {%- do problems.append(where ~ key ~ " must be true or false (a YAML boolean), got "
            ~ meta[key] | tojson) -%}
    {%- endfor -%}

    {%- for key, allowed in [('exit_reasons', exit_reasons),
                             ('unsubscribed_channels', channels)] if key in meta -%}
        {%- set values = meta[key] -%}
        {%- if values is string or values is mapping or values is not iterable -%}
            {%- do problems.append(where ~ key ~ " must be a list, got " ~ values | tojson) -%}
        {%- else -%}
            {%- for value in values if value not in allowed -%}
                {%- do problems.append(where ~ key ~ " has " ~ value | tojson
                    ~ "; allowed: " ~ allowed | join(', ')) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}

    {%- set calls = meta.get('segment_calls', 'both') -%}
    {%- if calls not in ['identify', 'track', 'both'] -%}
        {%- do problems.append(where ~ "segment_calls must be identify, track or both, got "
            ~ calls | tojson) -%}
    {%- endif -%}

    {%- set window = meta.get('conversion_window_days', 7) -%}
    {%- if window is boolean or window is not integer or window < 1 or window > 365 -%}
        {%- do problems.append(where ~ "conversion_window_days must be a whole number of "
            ~ "days from 1 to 365, got " ~ window | tojson) -%}
    {%- endif -%}

    {%- set changelog = meta.get('changelog', []) -%}
    {%- if changelog is string or changelog is mapping or changelog is not iterable -%}
        {%- do problems.append(where ~ "changelog must be a list") -%}
    {%- else -%}
        {%- for entry in changelog -%}
            {%- if entry is not mapping
                or entry.get('version') is boolean
                or entry.get('version') is not integer -%}
                {%- do problems.append(where ~ "changelog entry " ~ loop.index
                    ~ " needs an integer version") -%}
            {%- elif entry.get('date') is not none -%}
                {%- set date_text = entry.date | string -%}
                {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', date_text) -%}
                    {%- do problems.append(where ~ "changelog version " ~ entry.version
                        ~ " date must be YYYY-MM-DD, got " ~ date_text | tojson) -%}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(problems) }}
{%- endmacro %}
