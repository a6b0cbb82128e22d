-- A cancel also stops the retries of the calls it found in flight.
--
-- A queue cancel (cancel_pending() with no call) ends every pending call
-- accepted up to its time at once, as before; a call that was dialing or
-- connected then could not be ended, and its attempt, once over, used to
-- schedule a retry that was dialed after the cancel (found by the soak at
-- 40 requests/s: dialed-after-cancel). Now the cancel marks such calls
-- (cancel_requested_at), and conclude_attempts() ends a marked call when its
-- attempt ends instead of queueing another: status failed (it was dialed),
-- its last result, reason cancelled. An answered attempt completes as usual
-- (the cancel came too late to matter), and a call whose attempts or expiry
-- were used up anyway keeps that reason. A single-call cancel of a call
-- being dialed does the same (POST /api/v1/calls/{id}:cancel answers 202).
ALTER TABLE calls ADD COLUMN cancel_requested_at timestamptz;

-- cancel_pending() marks them and conclude_attempts() honours the mark:
-- common/sql/calls.sql.
