-- The outbox of call_events in a table of its own. An event row used to be
-- marked published with an UPDATE of published_at: a new version of the
-- whole row (its jsonb data included) and new entries in both indexes of
-- call_events, a sixth of Postgres's work per event in make bench-dialer.
-- Now the event's id waits in call_events_outbox from the transaction that
-- records it until the broker acknowledged it, and the mark is a DELETE of
-- that narrow row. The relay reads what the outbox still holds.
-- No index but its key: the outbox holds only what is being published (and
-- what a crash left behind), so the relay reads all of it.
CREATE TABLE call_events_outbox (
    event_id    uuid PRIMARY KEY,
    occurred_at timestamptz NOT NULL
);

INSERT INTO call_events_outbox (event_id, occurred_at)
    SELECT event_id, occurred_at FROM call_events WHERE published_at IS NULL;
DROP INDEX call_events_unpublished;
ALTER TABLE call_events DROP COLUMN published_at;
