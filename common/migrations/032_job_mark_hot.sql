-- Marking a dial job published (attempts.job_published_at, once the broker
-- acknowledged it) can be a heap-only (HOT) update: no index names
-- job_published_at any more, and attempts' pages keep a fifth free for the
-- new row version. It was the scheduler's third costliest statement in make
-- bench's end-to-end profile (about 50 us of Postgres time a call): each
-- mark wrote the whole row again and an entry in each of the table's seven
-- indexes, because the relay's index of unpublished jobs had
-- job_published_at in its predicate. The relay (JOBS_UNPUBLISHED_SQL) now
-- walks the attempts still released, oldest first, and skips those
-- published: few, since a job is released only for a dialer with a free
-- channel and leaves that state when the dialer takes it.
--
-- Building the index locks writes to attempts for as long as it takes: on
-- a large store, create it first with
--   CREATE INDEX CONCURRENTLY attempts_released ON attempts (released_at)
--       WHERE state = 'released';
-- and this migration then finds it there. The fillfactor applies to pages
-- written from now on.
CREATE INDEX IF NOT EXISTS attempts_released ON attempts (released_at) WHERE state = 'released';
DROP INDEX IF EXISTS attempts_unpublished_jobs;
ALTER TABLE attempts SET (fillfactor = 80);
