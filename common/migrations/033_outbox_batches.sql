-- The outbox holds one row per transaction's events, not one per event.
-- Each transaction that records events (a dialer's flush of a whole batch
-- of transitions, the scheduler's recording of accepted calls) inserts one
-- row naming them all, and the publisher deletes that one row once the
-- broker acknowledged every event in it: one insert and one delete per
-- batch instead of per event (about 3 events a call, hundreds in a batch
-- at full load). batch_id is the id of the batch's first event; events
-- lists the batch's events in the order they were recorded, which is the
-- order the relay sends them in.
CREATE TABLE call_events_outbox_batches (
    batch_id    uuid PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    events      uuid[] NOT NULL
);

-- What a crash left unpublished: each event a batch of its own.
INSERT INTO call_events_outbox_batches (batch_id, occurred_at, events)
    SELECT event_id, occurred_at, ARRAY[event_id] FROM call_events_outbox;
DROP TABLE call_events_outbox;
ALTER TABLE call_events_outbox_batches RENAME TO call_events_outbox;
ALTER INDEX call_events_outbox_batches_pkey RENAME TO call_events_outbox_pkey;
