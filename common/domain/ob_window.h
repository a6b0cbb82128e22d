/*
 * Campaign windows: the weekly hours (and holiday dates) during which a call
 * may be placed, in a named IANA time zone or in the callee's own local time.
 * Time arithmetic goes through ICU's calendar (DST and zone history
 * correct, and safe in a threaded process, unlike setenv("TZ")).
 *
 * The JSON form:
 *
 *   {"time_zone": "America/New_York",          (or "callee")
 *    "fallback_time_zone": "Europe/London",    (optional, only with "callee")
 *    "hours": {"mon": [["09:00", "12:00"], ["13:00", "17:00"]], "sat": [], ...},
 *    "holidays": ["2026-12-25", "2027-01-01"]}
 *
 * Semantics, which the scheduler and clients can rely on:
 * - The window is open at an instant when the local clock in the zone reads a
 *   weekday and time inside one of that day's intervals [start, end), and the
 *   local date is not a holiday. Times are "HH:MM", 00:00..24:00. It is the
 *   clock that counts: on a spring-forward day an interval inside the skipped
 *   hour never opens and 01:30-03:00 lasts 30 minutes; on a fall-back day
 *   01:30-02:30 is open for both 01:30-02:00 passes and closed from the
 *   second 01:00 to the second 01:30. A day a zone skips entirely (Apia,
 *   2011-12-30) never opens.
 * - "hours" lists a day's intervals; a day not listed or listed as [] is
 *   closed. Without "hours" every day is open 00:00-24:00 (holidays only).
 * - Holidays are local dates in whichever zone is being evaluated, closing
 *   the whole day.
 * - "callee": the caller passes the callee's zones (ob_phone_tz_lookup); the
 *   window is open only when it is open in every one of them. A callee with
 *   no known zone is evaluated in fallback_time_zone, "UTC" by default.
 * - No window (NULL) is always open.
 *
 * A parsed window is immutable: share it between threads freely.
 */
#ifndef OB_WINDOW_H
#define OB_WINDOW_H

#include "ob_common.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

/* How far ahead ob_window_next_open/next_close look: 366 days, in ms. */
#define OB_WINDOW_HORIZON_MS (366LL * 24 * 60 * 60 * 1000)
/* Bounds on what a window may list. */
#define OB_WINDOW_MAX_INTERVALS 16   /* per day */
#define OB_WINDOW_MAX_HOLIDAYS  1000 /* dates */

typedef struct ob_window ob_window_t;

/*
 * Parses a window from JSON text. NULL, "" (or only white space) and "null"
 * mean no window: *out is set to NULL and the result is OB_OK.
 * Returns OB_OK with *out a new window (caller frees with ob_window_free);
 * OB_EINVAL with *out NULL and err naming the field at fault in a client's
 * words ("window.hours.mon[1]: end 08:00 is not after start 09:00",
 * "window.time_zone: \"Mars/Base\" is not an IANA time zone"). Unknown
 * fields are rejected, so a misspelt one cannot silently widen the window.
 * Does not block.
 */
ob_rc_t ob_window_parse(const char *json, ob_window_t **out, ob_err_t *err) OB_MUSTCHECK;

/*
 * As ob_window_parse, for a window already parsed as part of a larger
 * document (a call request's "window" member). NULL or a JSON null mean no
 * window. item is only read; the result does not refer to it.
 */
ob_rc_t ob_window_from_cjson(const cJSON *item, ob_window_t **out, ob_err_t *err) OB_MUSTCHECK;

/* Frees a window from ob_window_parse; NULL is a no-op. */
void ob_window_free(ob_window_t *w);

/*
 * True if the window is evaluated in the callee's zones ("time_zone":
 * "callee"), so the caller must look them up with ob_phone_tz_lookup; false
 * for a named zone or no window.
 */
bool ob_window_uses_callee_zone(const ob_window_t *w);

/*
 * True if zone is a time zone ID that ICU knows as a system zone
 * ("Europe/London", "UTC", links such as "Asia/Calcutta"); false for NULL,
 * "", "callee", custom "GMT+5" forms and anything unknown. For validating
 * configuration such as a deployment's default zone.
 */
bool ob_window_zone_valid(const char *zone);

/*
 * The three queries below take the same arguments:
 *   w: the window; NULL means no window (always open).
 *   zones, nzones: the callee's zones (from ob_phone_tz_lookup), used only
 *     when the window's time_zone is "callee" and ignored otherwise. nzones 0
 *     (zones may then be NULL) means the callee's zone is unknown and the
 *     window's fallback_time_zone is used; so is any name ICU does not know.
 *   t_ms: the instant asked about, Unix milliseconds.
 * They are pure (no global state), safe to call from any thread and do not
 * block; each opens its own ICU calendars. They abort only if ICU cannot
 * allocate one, as on out of memory.
 */

/* True if the window is open at t_ms in every zone that applies. */
bool ob_window_open_at(const ob_window_t *w, const char *const *zones, size_t nzones, int64_t t_ms);

/*
 * The earliest instant >= t_ms at which the window is open in every zone
 * (t_ms itself if open then), or -1 if that does not happen within
 * OB_WINDOW_HORIZON_MS of t_ms (hours that never coincide across the
 * callee's zones, or a year of holidays).
 */
int64_t ob_window_next_open(const ob_window_t *w, const char *const *zones, size_t nzones,
                            int64_t t_ms);

/*
 * The earliest instant >= t_ms at which the window is closed in at least one
 * zone (t_ms itself if closed then): for an open window, when it closes. -1
 * if it stays open for OB_WINDOW_HORIZON_MS after t_ms (no window, or open
 * around the clock without holidays).
 */
int64_t ob_window_next_close(const ob_window_t *w, const char *const *zones, size_t nzones,
                             int64_t t_ms);

#endif
