-- What the soak driver saw, loaded next to the stack's own tables so that
-- check.sql can compare them (the soak's database is its own, wiped per run).
DROP TABLE IF EXISTS soak_accepted, soak_requests, soak_cancels, soak_queue_cancels,
    soak_pauses, soak_windows, soak_events, soak_hooks;
CREATE TABLE soak_accepted (call_id uuid PRIMARY KEY, deployment_id uuid, answered_at timestamptz);
-- Every queueing request: its message_reference and the HTTP status (0: no answer).
CREATE TABLE soak_requests (ref text PRIMARY KEY, status int);
-- 200 answers to POST /calls/{id}:cancel.
CREATE TABLE soak_cancels (call_id uuid, sent_at timestamptz, answered_at timestamptz);
-- 202 answers to POST /deployments/{id}:cancel.
CREATE TABLE soak_queue_cancels (deployment_id uuid, sent_at timestamptz, answered_at timestamptz);
-- From a :pause answer to the :resume request.
CREATE TABLE soak_pauses (deployment_id uuid, paused_at timestamptz, resumed_at timestamptz);
-- Open spans of the campaign windows.
CREATE TABLE soak_windows (deployment_id uuid, open_from timestamptz, open_to timestamptz);
-- Every message of the call-events topic.
CREATE TABLE soak_events (event_id text, type text, call_id uuid, attempt text);
-- Every delivery the webhook receiver logged.
CREATE TABLE soak_hooks (received_at float8, call_id uuid, event_id text, body_event_id text);
