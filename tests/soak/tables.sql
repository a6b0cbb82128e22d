-- What the soak driver saw, loaded next to the stack's own tables so that
-- check.sql can compare them (the soak's database is its own, wiped per run).
DROP TABLE IF EXISTS soak_accepted, soak_requests, soak_cancels, soak_queue_cancels,
    soak_pauses, soak_windows, soak_events, soak_hooks, soak_reads, soak_bulk;
-- Every call a 202 named (single calls, batch elements), when it was answered.
CREATE TABLE soak_accepted (call_id uuid PRIMARY KEY, deployment_id uuid, answered_at timestamptz);
-- Every single-call request (native or Plum): its message_reference and the
-- final HTTP status after the retries (0: never answered).
CREATE TABLE soak_requests (ref text PRIMARY KEY, status int);
-- Answers to POST /calls/{id}:cancel: 200 (cancelled), 202 (being dialed:
-- its attempt goes on, no other follows), others; dialing says the call was
-- seen dialing when the cancel was sent ("state:attempt"), else ''.
CREATE TABLE soak_cancels (call_id uuid, status int, sent_at timestamptz, answered_at timestamptz,
                           dialing text);
-- 202 answers to POST /deployments/{id}:cancel and Plum's DELETE .../cancel;
-- dialing names a call of the queue seen dialing when it was sent.
CREATE TABLE soak_queue_cancels (deployment_id uuid, route text, sent_at timestamptz,
                                 answered_at timestamptz, dialing text);
-- From a :pause answer to the :resume request.
CREATE TABLE soak_pauses (deployment_id uuid, paused_at timestamptz, resumed_at timestamptz);
-- Open spans of the campaign windows.
CREATE TABLE soak_windows (deployment_id uuid, open_from timestamptz, open_to timestamptz);
-- Every message of the call-events topic.
CREATE TABLE soak_events (event_id text, type text, call_id uuid, attempt text);
-- Every delivery the webhook receiver logged.
CREATE TABLE soak_hooks (received_at float8, call_id uuid, event_id text, body_event_id text);
-- Every read of a call right after its 202: on the ingest that accepted it
-- (same) or the other, by route (native, plum); status (negative: the body
-- named another call), the body's recorded flag (or the problem's code),
-- the call's state, ms after the 202.
CREATE TABLE soak_reads (call_id uuid, same bool, route text, status int, recorded text,
                         state text, ms int);
-- Every batch and upload: its message_reference (on every row, also its
-- Idempotency-Key), kind, good rows (each with its own phone number), the
-- calls its final answer counted (-1: none), deployment, answer time and
-- how many tries it took.
CREATE TABLE soak_bulk (ref text PRIMARY KEY, kind text, key text, rows int, queued int,
                        deployment_id uuid, answered_at timestamptz, tries int);
