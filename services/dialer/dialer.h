/*
 * The dialer worker's context: dial jobs in, carrier calls, state
 * transitions written to Postgres and published as events, and the row in
 * the dialers table by which the scheduler routes jobs here
 * (dialer_worker.c), driven by the loop in main.c.
 */
#ifndef DIALER_H
#define DIALER_H

#include "dialer_carrier.h"
#include "ob_calls.h"
#include "ob_config.h"
#include "ob_kafka.h"
#include "ob_metrics.h"
#include "ob_proto.h"
#include "ob_service.h"
#include "ob_url.h"
#include "ob_vocab.h"

#include <libpq-fe.h>

#define DIALER_MAX_PARTITIONS 1024 /* dial-jobs partitions tracked (OB_TOPIC_PARTITIONS bound) */

typedef struct {
    ob_base_config_t base; /* shared settings (must be first) */
    long long channels;    /* OB_DIALER_CHANNELS */
    long long lease_s;     /* OB_DIALER_LEASE_S */
    char *carrier;         /* OB_DIALER_CARRIER */
    double sim_time_scale; /* OB_SIM_TIME_SCALE */
    long long sim_seed;    /* OB_SIM_SEED */
    char *sim_audio_dir;   /* OB_SIM_AUDIO_DIR */

    /* the sip carrier (dialer_sip.c) */
    char *sip_trunk;                   /* OB_SIP_TRUNK */
    char *sip_local_addr;              /* OB_SIP_LOCAL_ADDR */
    long long sip_port;                /* OB_SIP_PORT */
    long long sip_rtp_port_min;        /* OB_SIP_RTP_PORT_MIN */
    long long sip_rtp_port_max;        /* OB_SIP_RTP_PORT_MAX */
    double sip_cps;                    /* OB_SIP_CPS */
    char *sip_username;                /* OB_SIP_USERNAME */
    char *sip_password;                /* OB_SIP_PASSWORD */
    char *sip_from_domain;             /* OB_SIP_FROM_DOMAIN */
    char *sip_anonymous_id;            /* OB_SIP_ANONYMOUS_ID */
    long long sip_ring_timeout_s;      /* OB_SIP_RING_TIMEOUT_S */
    long long sip_response_timeout_ms; /* OB_SIP_RESPONSE_TIMEOUT_MS */
    long long sip_talk_limit_s;        /* OB_SIP_TALK_LIMIT_S */

    /* start_url requests (dialer_app.c) */
    long long app_timeout_ms;  /* OB_DIALER_APP_TIMEOUT_MS */
    long long app_concurrency; /* OB_DIALER_APP_CONCURRENCY */

    /* result_url webhooks (dialer_webhooks.c) */
    bool webhook_enabled;            /* OB_WEBHOOK_ENABLED */
    long long webhook_concurrency;   /* OB_WEBHOOK_CONCURRENCY */
    long long webhook_timeout_ms;    /* OB_WEBHOOK_TIMEOUT_MS */
    long long webhook_retry_base_ms; /* OB_WEBHOOK_RETRY_BASE_MS */
    long long webhook_retry_max_ms;  /* OB_WEBHOOK_RETRY_MAX_MS */
    long long webhook_max_age_s;     /* OB_WEBHOOK_MAX_AGE_S */

    /* say and play audio (dialer_media.c) */
    long long media_cache_mb;  /* OB_DIALER_MEDIA_CACHE_MB */
    long long play_max_bytes;  /* OB_DIALER_PLAY_MAX_BYTES */
    long long play_timeout_ms; /* OB_DIALER_PLAY_TIMEOUT_MS */
    long long tts_timeout_ms;  /* OB_DIALER_TTS_TIMEOUT_MS */
    long long max_audio_s;     /* OB_DIALER_MAX_AUDIO_S */

    /* where fetched URLs may connect (ob_url.h) */
    char *url_deny;  /* OB_DIALER_URL_DENY: address ranges refused */
    char *url_allow; /* OB_DIALER_URL_ALLOW: exceptions to the deny ranges */
} dialer_config_t;

enum {
    M_JOBS,       /* outbound_dial_jobs_taken_total */
    M_STALE_JOBS, /* outbound_dial_jobs_refused_total */
    M_IN_FLIGHT,  /* outbound_calls_in_flight */
    M_CHANNELS,   /* outbound_dialer_channels */
    M_RESULT,     /* outbound_results_total{result=...}: M_RESULT + each dialed ob_result_t */
    M_READY = M_RESULT + OB_RESULT_DIALED_COUNT, /* outbound_ready */
    M_COUNT,
};

/*
 * Where a channel's slot is: one state per slot, changed only by
 * dialer_slot_enter (dialer_slots.c), which refuses any move not in this
 * table (OB_ASSERT):
 *
 *   IDLE             -> VERIFYING          a dial job is read
 *                    -> INVALID            a message that is no dial job is read
 *   VERIFYING        -> TAKING             its deployment's URLs are fine (or unchecked)
 *                    -> ENDING             its URL check failed: it ends untried
 *                    -> IDLE               a drain drops it (never started)
 *   TAKING           -> DIALING            dialing recorded; the carrier starts the call
 *                    -> IDLE               refused (stale job), or given back to Kafka
 *   INVALID          -> IDLE               its offset stored (or given back) by a flush
 *   DIALING          -> ANSWERED           carrier: the callee answered
 *                    -> ENDING             carrier: the call ended
 *   ANSWERED         -> CONNECTED          connected recorded; the application hears of it
 *                    -> DIALING            connected refused by its guard; not run
 *                    -> ANSWERED_ENDING    carrier: ended before connected was written
 *   CONNECTED        -> CONNECTED_ENDING   carrier: the call ended
 *   ENDING, ANSWERED_ENDING,
 *   CONNECTED_ENDING -> IDLE               the attempt's conclusion recorded
 *
 * The states marked waiting below wait in ctx->waiting, oldest first, for
 * the URL check (VERIFYING) or for the next flush (the rest), which writes
 * them all in one transaction once per turn of the loop (dialer_flush).
 */
typedef enum {
    DIALER_SLOT_IDLE,             /* no call; its index is on the idle stack */
    DIALER_SLOT_VERIFYING,        /* waiting: a job read; its deployment's URLs being checked */
    DIALER_SLOT_TAKING,           /* waiting: a job read; its dialing waits for the flush */
    DIALER_SLOT_INVALID,          /* waiting: no dial job; its offset is stored by the flush */
    DIALER_SLOT_DIALING,          /* the carrier has the call; Postgres: dialing */
    DIALER_SLOT_ANSWERED,         /* waiting: answered; connected waits for the flush */
    DIALER_SLOT_CONNECTED,        /* connected recorded; the application runs */
    DIALER_SLOT_ENDING,           /* waiting: ended unconnected (or untried); conclusion waits */
    DIALER_SLOT_ANSWERED_ENDING,  /* waiting: answered and ended in one turn; connected, then
                                     conclusion wait */
    DIALER_SLOT_CONNECTED_ENDING, /* waiting: ended after connected; conclusion waits */
    DIALER_SLOT_STATE_COUNT,
} dialer_slot_state_t;

/* One channel: everything about the call it holds. All but state and the
 * idle stack's bookkeeping is zero while IDLE. */
typedef struct {
    dialer_slot_state_t state;   /* see dialer_slot_state_t; only dialer_slot_enter sets it */
    ob_dial_job_t job;           /* the job it came from (owned) */
    rd_kafka_message_t *msg;     /* the job's message (owned) until its offset is stored */
    ob_detect_config_t detect;   /* the deployment's detection thresholds */
    const char *answered_as;     /* callee type reported with the answer (the carrier's) */
    const char *decided_as;      /* callee type once decided (the carrier's), else NULL */
    int decision_ms;             /* decided this long after the answer (nominal), or -1 */
    ob_detect_result_t detected; /* the carrier's audio verdict; why NULL when none */
    int sip_code;                /* the carrier's final SIP status, 0 if none */
    char *sip_reason;            /* its reason phrase (owned), NULL if none */
    ob_attempt_end_t end;        /* the ENDING states: how it ended */
    int64_t answered_ms;         /* monotonic time of the answer, 0 before */
    struct dialer_doc_run *run;  /* its call-control document, running (dialer_doc.c), or NULL */
} dialer_slot_t;

/* What an outcome recorded on an attempt is. */
typedef enum {
    DIALER_OUTCOME_CONNECTED, /* the connected request's: app_status, app_error, app_ms */
    DIALER_OUTCOME_UPDATE,    /* a callee_type update's failure, in app_error when it has none */
    DIALER_OUTCOME_DOC,       /* the document's error (dialer_doc.c), appended to app_error */
} dialer_outcome_kind_t;

/* A start_url request's outcome, or a document's error, recorded on its
 * attempt by the next flush (dialer_app_result_t, copied). */
typedef struct {
    char *call_id;              /* the call (owned) */
    int64_t attempt;            /* its attempt */
    dialer_outcome_kind_t kind; /* see dialer_outcome_kind_t */
    long status;                /* HTTP status, 0 when none */
    char *error;                /* why it failed (owned), NULL when it succeeded */
    int ms;                     /* how long it took */
} dialer_app_outcome_t;

typedef struct {
    ob_service_t svc;                    /* readiness, metrics, HTTP server (first member) */
    const dialer_config_t *cfg;          /* read-only configuration */
    PGconn *pg;                          /* main thread only */
    rd_kafka_t *jobs;                    /* consumer of outbound.dial-jobs */
    ob_producer_t *producer;             /* events */
    carrier_t *carrier;                  /* sim or sip */
    char *topic_events;                  /* full topic name */
    char *source;                        /* CloudEvents source of this worker */
    dialer_slot_t *slots;                /* one per channel */
    int nstate[DIALER_SLOT_STATE_COUNT]; /* slots in each state */
    int *idle;                           /* indexes of the IDLE slots, a stack of nstate[IDLE] */
    int *waiting;                        /* slots in a waiting state, oldest first */
    int nwaiting;                        /* its length */
    bool cutting; /* the drain hung up every call: those ending now end as dialer_shutdown */
    dialer_app_outcome_t *outcomes;       /* start_url outcomes waiting for the flush */
    int noutcomes, outcomes_cap;          /* their count, and room */
    int64_t next_relay_ms;                /* monotonic time of the next event relay pass */
    int64_t flush_after_ms;               /* a failed flush is retried from then (monotonic) */
    struct dialer_unacked *unacked;       /* flushes' events not yet acknowledged, oldest first */
    struct dialer_unacked *unacked_tail;  /* the newest of them */
    char *to_mark;                        /* ids acknowledged, marked by the next flush */
    int64_t next_renew_ms;                /* monotonic time of the next lease renewal */
    int64_t next_announce_ms;             /* monotonic time of the next heartbeat */
    bool announcing;                      /* the dialers row is kept up (false once draining) */
    bool announced;                       /* this process's row was written once */
    bool assigned[DIALER_MAX_PARTITIONS]; /* dial-jobs partitions assigned to us */
    ob_metric_t metrics[M_COUNT];         /* Prometheus registry */
    ob_kafka_metrics_t *kafka_metrics;    /* per-topic Kafka counts and lag */
    ob_histogram_t queue_to_dialing;      /* outbound_queue_to_dialing_seconds */
    ob_metric_family_t *pg_writes;        /* outbound_postgres_write_duration_seconds{op} */
    struct dialer_app *app;               /* start_url requests (dialer_app.h) */
    struct dialer_media *media;           /* audio of say and play (dialer_media.h) */
    double time_scale;                    /* nominal ms per real ms: the sim's scale, else 1 */
    ob_call_event_t *notes;           /* events of running calls (gathered, ...) for the flush */
    int nnotes, notes_cap;            /* their count, and room */
    ob_histogram_t first_audio_gap;   /* outbound_first_audio_gap_seconds */
    struct dialer_webhooks *webhooks; /* result_url sender (dialer_webhooks.h), NULL if off */
    ob_metric_t sip_metrics[SIP_M_COUNT]; /* the sip carrier's (outlive it) */
    ob_url_policy_t url_policy;           /* where start_url, result_url and checks may connect */
} dialer_ctx_t;

/* Most dial jobs read in one turn of the loop (one flush). */
#define DIALER_TAKE_BATCH 2000

/* ---- The slots (dialer_slots.c): no I/O, main thread only ---------------- */

/* Allocates cfg->channels IDLE slots, the idle stack and the waiting list. */
void dialer_slots_init(dialer_ctx_t *ctx);

/* Frees what the slots own (jobs, SIP reasons) and the slot arrays.
 * NULL-safe on a context whose slots were never allocated. */
void dialer_slots_free(dialer_ctx_t *ctx);

/* Destroys the dial job messages slots still hold (an exit without a
 * drain), before their consumer is closed; their offsets are not stored. */
void dialer_slots_drop_messages(dialer_ctx_t *ctx);

/* Moves slot s to state `to`: the one place a slot changes state. Asserts
 * that the move is in the table above dialer_slot_state_t. Leaving IDLE
 * pops s off the idle stack (s must be its top: dialer_slot_next_idle);
 * entering IDLE frees what s owns but its message (the caller's: stored or
 * destroyed first), zeroes it and pushes it back. Entering a waiting state
 * from one that is not appends s to ctx->waiting; the caller that moves a
 * slot out of the waiting states has taken it off that list. */
void dialer_slot_enter(dialer_ctx_t *ctx, dialer_slot_t *s, dialer_slot_state_t to);

/* The IDLE slot the next dialer_slot_enter out of IDLE must name, or NULL
 * when every channel is busy. */
dialer_slot_t *dialer_slot_next_idle(dialer_ctx_t *ctx);

/* Whether slots in state st sit in ctx->waiting. */
bool dialer_slot_waits(dialer_slot_state_t st);

/* Whether a flush writes something for slots in state st (the waiting
 * states but VERIFYING). */
bool dialer_slot_flushes(dialer_slot_state_t st);

/* Slots holding a call or a job (not IDLE). */
int dialer_active(const dialer_ctx_t *ctx);

/* Writes waiting for Postgres: slots in dialer_slot_flushes states and
 * start_url outcomes. */
int dialer_pending(const dialer_ctx_t *ctx);

/* Drain: frees the slots of jobs still waiting for a URL check, which were
 * never started (their messages destroyed, offsets not stored); the
 * scheduler releases their attempts again once their leases run out. */
void dialer_drop_unverified(dialer_ctx_t *ctx);

/* ---- The worker (dialer_worker.c): main thread only ------------------------ */

/* Queues an outcome for the attempt s holds, recorded by the next flush. */
void dialer_outcome_add(dialer_ctx_t *ctx, const dialer_slot_t *s, dialer_outcome_kind_t kind,
                        long status, const char *error, int ms);

/* Queues the event outbound.call.<type> about the connected call s (result
 * and digits may be NULL), recorded and published by the next flush. */
void dialer_note_event(dialer_ctx_t *ctx, const dialer_slot_t *s, const char *type,
                       const char *result, const char *digits);

/* dialer_note_event for a gather's digits (outbound.call.gathered). */
void dialer_note_gathered(dialer_ctx_t *ctx, const dialer_slot_t *s, const char *digits);

/* A copy of the i-th note (caller clears it), for a flush's transaction,
 * which may run more than once. */
ob_call_event_t dialer_note_copy(const dialer_ctx_t *ctx, int i);

/* Drops the notes (recorded by a flush). */
void dialer_notes_clear(dialer_ctx_t *ctx);

/* Drops the outcomes (recorded by a flush). */
void dialer_outcomes_clear(dialer_ctx_t *ctx);

/* Inside the flush's transaction: writes the outcomes on their attempts. */
ob_rc_t dialer_outcomes_write(dialer_ctx_t *ctx, ob_err_t *err) OB_MUSTCHECK;

/* An event about the job's call (caller clears it). */
ob_call_event_t dialer_event_for(dialer_ctx_t *ctx, const ob_dial_job_t *job, const char *type,
                                 const char *state, const char *result);

/* Creates the start_url client (ctx->app) on the worker's callbacks: it
 * reads deployment settings through the worker's connection and hands each
 * request's outcome and answer back to the worker. Call from the main
 * thread before other threads use libcurl. Returns OB_ERR with err set if
 * libcurl fails. */
ob_rc_t dialer_app_start(dialer_ctx_t *ctx, ob_err_t *err) OB_MUSTCHECK;

/* Advances the carrier (its callbacks fire here) and the start_url client
 * (its results are applied here) without blocking. Returns when it wants to
 * be called again (monotonic ms), INT64_MAX when nothing is due. */
int64_t dialer_run(dialer_ctx_t *ctx);

/* Every 5 s (the first time 5 s after the first call), sends the events
 * that flushes left unpublished (ob_events_relay) on ctx->pg; cheap to call
 * on every loop turn. A failure is logged and tried again 5 s later. */
void dialer_relay(dialer_ctx_t *ctx);

/* Drain: lets start_url requests finish until deadline_ms, aborts the
 * rest, and records their outcomes (one flush). */
void dialer_finish_app(dialer_ctx_t *ctx, int64_t deadline_ms);

/* Takes one dial job message (owned from now on) into a free slot; its
 * dialing transition is written by the next dialer_flush. The caller makes
 * sure a slot is free (dialer_slot_next_idle). A deployment that requires verified
 * URLs (verify_urls) has them checked first (dialer_app_check_urls): the job
 * waits in its slot for the answer, and when they do not answer 200 its
 * attempt ends untried, result noattempt, reason url_check_failed. */
void dialer_take_job(dialer_ctx_t *ctx, rd_kafka_message_t *msg);

/* Moves the jobs whose URL check has answered on: to dialing, or to their
 * noattempt conclusion; cheap to call on every loop turn. */
void dialer_verify(dialer_ctx_t *ctx);

/*
 * Writes every waiting transition in one transaction: the guarded dialing
 * of the taken jobs (a stale or duplicate job is refused), the connected
 * calls, the concluded attempts (ob_calls_conclude_tx) and their events,
 * and the start_url outcomes; commits, publishes the events (one produce,
 * not waited for: a later flush marks them in its transaction once the
 * broker acknowledged them) and then acts: starts the carrier calls of the
 * jobs taken (storing their offsets), tells the application of the calls
 * connected, frees the slots of the calls concluded. When Postgres fails
 * the taken jobs are given back to Kafka (their partitions rewound) and the
 * rest waits a second. Returns false when it failed.
 */
bool dialer_flush(dialer_ctx_t *ctx);

/* Waits for the acknowledgements of the flushes' events and marks them
 * published (before exiting; each flush marks those acknowledged by then). */
void dialer_settle(dialer_ctx_t *ctx);

/* Frees what the worker holds, in this order: the start_url client (the
 * outcomes of requests it aborts are not recorded), the carrier, the
 * events' delivery reports not collected (those events are left to the
 * relay), the ids not yet marked, the slots and the Postgres connection.
 * Call last, after the producer is gone. NULL-safe members. */
void dialer_worker_free(dialer_ctx_t *ctx);

/* Every third of OB_DIALER_LEASE_S, extends the leases of the attempts this
 * worker is dialing; cheap to call on every loop turn. */
void dialer_renew_leases(dialer_ctx_t *ctx);

/* Ends every call still in progress (drain deadline): the carrier hangs up
 * and the attempts are recorded with reason "dialer_shutdown"; one that had
 * not been answered counts as an attempt with result unknown. Waits up to
 * 2 s for the carrier to report the ends (sip: from its own thread, once
 * the BYEs and CANCELs are sent); the next flushes record them. */
void dialer_hangup_all(dialer_ctx_t *ctx);

/* Consumer rebalance notification: tracks the assigned dial-jobs partitions
 * and announces the change at once (a revocation before the partitions go),
 * so the scheduler stops routing to partitions we no longer consume. */
void dialer_on_rebalance(void *opaque, bool assigned, const rd_kafka_topic_partition_list_t *parts);

/* Upserts this worker's dialers row (carrier, channels, calls in progress,
 * assigned partitions, seen_at = now()) once a second, or at once when now
 * is true; cheap to call on every loop turn. Does nothing once
 * ctx->announcing is false. One short statement on ctx->pg (reconnecting
 * if the connection broke); a failure is logged and retried a second later. */
void dialer_announce(dialer_ctx_t *ctx, bool now);

/* Stops announcing and deletes the row, so the scheduler routes nothing more
 * here (drain). A failure is logged: the row then goes stale within the
 * scheduler's staleness bound. */
void dialer_withdraw(dialer_ctx_t *ctx);

/* The callbacks a carrier is created with (dialer_slots.c): worker is the
 * dialer_ctx_t, call the dialer_slot_t given to start. On the worker's
 * thread they record on the slot and move it (answered, ended); a callee
 * type decided on a connected call is queued for the start_url client. */
extern const carrier_events_t dialer_carrier_events;

#endif
