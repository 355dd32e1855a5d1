"""`manifest.json`: what was written, merged from the shards, with exact dirt counts.

For a webhook loader: `lines = distinct_event_ids + duplicate_identical +
duplicate_conflicting + malformed_total`, i.e. read = loaded + duplicate + rejected.
Nothing time-dependent goes in, so the manifest is byte-identical for the same args.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from scripts.demo_data.clock import Period
from scripts.demo_data.dirt import MALFORMED_KINDS
from scripts.demo_data.segment_events import SegmentPolicy


def _sum_dicts(dicts: list[dict]) -> dict:
    out: dict = {}
    for d in dicts:
        for key, value in d.items():
            if isinstance(value, dict):
                out[key] = _sum_dicts([out.get(key, {}), value])
            else:
                out[key] = out.get(key, 0) + value
    return dict(sorted(out.items()))


def _stream(results: list[dict], prefix: str, events: dict, total_events: int) -> dict:
    dirt = _sum_dicts([r[f"{prefix}_dirt"] for r in results])
    malformed = {kind: dirt[kind] for kind in MALFORMED_KINDS}
    files = sorted(
        (f for r in results for f in r[f"{prefix}_files"]), key=lambda f: f["path"]
    )
    duplicates = dirt["duplicate_identical"] + dirt["duplicate_conflicting"]
    return {
        "files": len(files),
        "gzip_files": sum(1 for f in files if f["path"].endswith(".gz")),
        "lines": total_events + duplicates + sum(malformed.values()),
        "event_lines": total_events + duplicates,
        "distinct_event_ids": total_events,
        "duplicate_identical": dirt["duplicate_identical"],
        "duplicate_conflicting": dirt["duplicate_conflicting"],
        "late_events": dirt["late_events"],
        "malformed": malformed,
        "malformed_total": sum(malformed.values()),
        "out_of_order_files": sorted(
            path for r in results for path in r[f"{prefix}_out_of_order_files"]
        ),
        "events": events,
        "per_file": files,
    }


def build(args: dict, period: Period, results: list[dict]) -> dict:
    results = sorted(results, key=lambda r: r["shard"])
    web_events = _sum_dicts([r["webhook_events"] for r in results])
    web_total = sum(n for metrics in web_events.values() for n in metrics.values())
    seg_events = _sum_dicts([r["segment_events"] for r in results])
    seg_total = sum(seg_events.values())
    stats = _sum_dicts([r["stats"] for r in results])
    rows_by_status = _sum_dicts([r["order_rows_by_status"] for r in results])
    order_files = sorted(
        (f for r in results for f in r["order_files"]), key=lambda f: f["path"]
    )
    orders = sum(r["orders"] for r in results)
    policy = SegmentPolicy(period)
    webhooks = _stream(results, "webhook", web_events, web_total)
    segment = _stream(results, "segment", seg_events, seg_total)
    segment["mirrored_in_webhooks"] = stats.pop("segment_mirrored")
    segment["only_in_segment"] = stats.pop("segment_only")
    return {
        "generator": "audiences demo-data",
        "args": args,
        "period": {
            "first_day": period.start_date.isoformat(),
            "last_day": period.end_date.isoformat(),
            "days": period.days,
        },
        "people": sum(r["people"] for r in results),
        "shop_only_customers": sum(r["shop_only_customers"] for r in results),
        "segment_integration": {
            "switched_on_at": period.iso_plain(policy.on_ts),
            "webhook_outage": (
                {
                    "from": period.iso_plain(policy.outage_from),
                    "to": period.iso_plain(policy.outage_to),
                }
                if policy.outage_to > policy.outage_from
                else None
            ),
        },
        "webhooks": webhooks,
        "segment": segment,
        "orders": {
            "files": len(order_files),
            "rows": sum(rows_by_status.values()),
            "orders": orders,
            "rows_by_status": rows_by_status,
            "final_status": {
                "completed": orders
                - rows_by_status["refunded"]
                - rows_by_status["cancelled"],
                "refunded": rows_by_status["refunded"],
                "cancelled": rows_by_status["cancelled"],
            },
            "per_file": order_files,
        },
        "stats": stats,
        "totals": {
            "webhook_events": web_total,
            "segment_events": seg_total,
            "order_rows": sum(rows_by_status.values()),
            "files": webhooks["files"] + segment["files"] + len(order_files),
        },
    }


def write(path: Path, manifest: dict) -> None:
    path.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
