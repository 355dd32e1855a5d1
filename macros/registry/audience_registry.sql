{#
    Every audience version defined under models/audiences/, read from dbt's graph: one dict
    per version with key, version, model name, is_latest and the yml's meta.audience
    (segment_calls: which Segment calls carry membership, identify, track or both).
    Empty at parse time (the graph is only filled when dbt executes). Stops the build when
    any audience's meta is invalid (audience_meta_problems), listing every problem.
#}
{% macro audience_registry() -%}
    {%- set registry = [] -%}
    {%- set problems = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'model'
            and node.package_name == project_name
            and (node.config.meta or {}).get('audience') -%}
            {%- set meta = node.config.meta.audience -%}
            {%- do problems.extend(audience_meta_problems(node.name, meta)) -%}
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
                'segment_calls': meta.get('segment_calls', 'both'),
                'changelog': meta.get('changelog', []),
                'exit_reasons': meta.get('exit_reasons', []),
                'unsubscribed_channels': meta.get('unsubscribed_channels', []),
                'conversion_window_days': meta.get('conversion_window_days', 7) | int,
            }) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if problems -%}
        {{ exceptions.raise_compiler_error(
            "invalid audience meta in models/audiences/_audiences.yml:\n- "
            ~ (problems | unique | join('\n- '))
        ) }}
    {%- endif -%}
    {{ return(registry | sort(attribute='audience_key')) }}
{%- endmacro %}
