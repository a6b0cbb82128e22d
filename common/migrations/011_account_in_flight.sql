-- The scheduler counts an account's calls in flight (for its capacity) by
-- account, not by scanning every call.
CREATE INDEX calls_account_in_flight ON calls (account_id) WHERE active_attempt IS NOT NULL;
