{#
    Every audience version defined under models/audiences/, read from dbt's graph: one dict
    per version with key, version, model name, is_latest and the yml's meta.audience.
    Empty at parse time (the graph is only filled when dbt executes).
#}
{% macro audience_registry() -%}
    {%- set registry = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'model'
            and node.package_name == project_name
            and (node.config.meta or {}).get('audience') -%}
            {%- set meta = node.config.meta.audience -%}
            {%- set version = node.version if node.version is not none else 1 -%}
            {%- set latest = node.latest_version if node.latest_version is not none else 1 -%}
            {%- do registry.append({
                'audience_key': node.name,
                'audience_version': version | int,
                'is_latest': (version | string) == (latest | string),
                'relation_name': node.relation_name,
                'description': (node.description or '') | trim,
                'name': meta.get('name', node.name),
                'owner': meta.get('owner', ''),
                'holdout_share': meta.get('holdout_share', 0) | float,
                'is_synced': meta.get('is_synced', false),
                'changelog': meta.get('changelog', []),
                'exit_reasons': meta.get('exit_reasons', []),
                'unsubscribed_channels': meta.get('unsubscribed_channels', []),
                'conversion_window_days': meta.get('conversion_window_days', 7) | int,
            }) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(registry | sort(attribute='audience_key')) }}
{%- endmacro %}
