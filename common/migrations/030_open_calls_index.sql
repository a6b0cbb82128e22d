-- The calls not completed yet, by deployment: what the pending limit counts
-- (ingest_check_pending(), once a second per deployment), what a queue
-- cancel locks (cancel_pending()) and what the scheduler's statistics read.
-- Each of them used to read every call the deployment ever had: in the
-- hour's hard soak (1.37 million calls) the pending count took 5.4 s a time
-- and kept PostgreSQL's two cores busy. With this index each reads only the
-- calls still open (a count over 1.4 million calls of which 5,000 open:
-- 149 ms before, 0.9 ms after; docs/reliability.md).
--
-- Building it locks writes to calls for as long as it takes: on a large
-- store, create it first with
--   CREATE INDEX CONCURRENTLY calls_open ON calls (deployment_id, call_id)
--       WHERE state <> 'completed';
-- and this migration then finds it there.
CREATE INDEX IF NOT EXISTS calls_open ON calls (deployment_id, call_id)
    WHERE state <> 'completed';
