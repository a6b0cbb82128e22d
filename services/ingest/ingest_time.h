/*
 * Times as clients write them (ingest_time.c). Pure functions: safe from
 * any thread.
 */
#ifndef INGEST_TIME_H
#define INGEST_TIME_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

/* A time given as unix seconds (number or digit string), RFC 3339 text,
 * "now" or "+N unit" (second, minute, hour, day, week): what the native API
 * takes; false for anything else. */
bool ingest_parse_time(const cJSON *item, int64_t *unix_ms);
bool ingest_parse_time_text(const char *s, int64_t *unix_ms);

/* The English time expressions of PHP's strtotime() that Plum DEV documents
 * ("now", "+3 days", "oct 14th, 2011 11:05PM EST", "tomorrow 9am", "next
 * monday", "3 hours ago", ...; docs/plum.md lists the grammar), relative to
 * now_ms, in UTC unless the text names a zone. False for anything else, or
 * a time before 1970 or from the year 3000. */
bool ingest_parse_natural_time(const char *s, int64_t now_ms, int64_t *unix_ms);

#endif
