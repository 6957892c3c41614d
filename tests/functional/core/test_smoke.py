from __future__ import annotations

from decimal import Decimal


def test_csv_and_jsonl_land(pipeline):
    pipeline.land(
        "inbound/acme/orders/o1.csv",
        b"order_id,amount,quantity,placed_at\n1,9.99,2,2026-01-01T10:00:00Z\n2,abc,1,\n3,1.5,,\n",
    )
    pipeline.land(
        "inbound/acme/events/e1.jsonl",
        b'{"event_id": "a", "kind": "x", "value": 1.25, "ok": true, "day": "2026-02-03"}\n\n'
        b'{"event_id": "b"}\n',
    )
    result = pipeline.drain()
    assert result is not None
    orders = pipeline.file("inbound/acme/orders/o1.csv")
    assert (orders.status, orders.rows_ok, orders.rows_rejected) == ("PROCESSED_WITH_REJECTS", 2, 1)
    events = pipeline.file("inbound/acme/events/e1.jsonl")
    assert (events.status, events.rows_ok, events.rows_rejected) == ("PROCESSED_WITH_REJECTS", 1, 1)
    items = {i["pk"]: i for i in pipeline.items()}
    assert items["ORDER#1"]["amount"] == Decimal("9.99")
    assert items["ORDER#1"]["sk"] == "PARTNER#acme"
    assert items["ORDER#1"]["_line"] == 2
    assert items["EVENT#a"]["value"] == Decimal("1.25")
    assert pipeline.rejects("inbound/acme/orders/o1.csv")[0]["line"] == 3
