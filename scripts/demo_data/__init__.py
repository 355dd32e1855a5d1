"""Realistic demo data for Engagement Audiences: `audiences demo-data --out DIR`.

A D2C skincare brand ("Lumen Skin", https://shop.example) messages its people through
Customer.io by email, SMS, push and in-app, and sells through its shop. The generator
simulates that period and writes, deterministically for a seed:

    DIR/
      webhooks/YYYY-MM-DD_sNN.ndjson[.gz]  Customer.io reporting-webhook events (NDJSON),
                                           one file per arrival day and shard; the
                                           oldest tenth of the days gzip-compressed
      segment/YYYY-MM-DD_sNN.ndjson[.gz]   Segment `track` events from Customer.io's
                                           Segment (Message Metrics) integration, from
                                           the day it was switched on
      orders/YYYY-MM_sNN.csv               the shop's order export (header
                                           order_id,customer_id,email,status,total_cents,
                                           currency,ordered_at,updated_at)
      campaigns.json                       the message catalogue with stable ids
      manifest.json                        args, per-file line counts, totals and the
                                           exact counts of injected dirt

Lines inside a file are in arrival order (except the files listed as out of order);
order by `timestamp`, never by position. The generator only writes: it shares no
parsing code with the loaders (`scripts.loaders`) that read these files.

Modules: `command` (CLI), `simulation` (one shard's discrete-event loop), `people`,
`campaigns`, `schedule`, `funnel` (per-delivery metric events), `webhooks` and
`segment_events` (rendering), `orders`, `dirt`, `writer`, `manifest`, `ids`, `clock`.
"""
