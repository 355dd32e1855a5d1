"""The one window of believable event times, shared by every loader.

An event time before EARLIEST (2000-01-01, long before Customer.io or Segment existed)
or more than FUTURE_TOLERANCE after the load is a broken clock or a wrong unit
(milliseconds sent as seconds, `epoch`, `-infinity`, year 0001), never a fact: every
source rejects it (`timestamp_out_of_range`, `timestamp_in_future`) instead of letting it
reach `fct_message_events` or an order's date.
"""

from __future__ import annotations

from datetime import datetime, timedelta

EARLIEST = datetime(2000, 1, 1)  # UTC wall time, as timestamps are stored
EARLIEST_UNIX = 946684800  # EARLIEST in Unix seconds
FUTURE_TOLERANCE = timedelta(days=1)

OUT_OF_RANGE = "timestamp_out_of_range"
IN_FUTURE = "timestamp_in_future"
