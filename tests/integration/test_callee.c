/*
 * The test callee (tests/callee, docs/testing-callee.md) on its own, with
 * SIPp as the caller (tests/integration/sipp/callee_call.xml): it answers as
 * its rules say, sends its greeting and keys (SIPp's -rtp_echo sends them
 * back, so its own recording holds them), records what SIPp plays, reports
 * every call, and holds two hundred calls with RTP at once. Needs no stack.
 */
#include "harness.h"
#include "harness_callee.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spandsp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static h_callee_t callee;

static void teardown(void)
{
    h_callee_kill(&callee);
}

/* An even UDP port p with p and p + 2 free on loopback (SIPp's -mp takes both). */
static int free_udp_pair(void)
{
    for (int tries = 0; tries < 100; tries++) {
        int p = h_free_port() & ~1, ok = 1;
        for (int k = 0; k <= 2 && ok; k += 2) {
            int fd = socket(AF_INET, SOCK_DGRAM, 0);
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(p + k))};
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
            close(fd);
        }
        if (ok && p > 1024 && p < 65000)
            return p;
    }
    cr_assert_fail("no free UDP port pair");
    return 0;
}

/* Writes the caller's scenario for this test: the media port SIPp offers
 * (its echo port, or the port it plays a file from), the file played, the
 * hold time. Returns its path (static). */
static const char *scenario(bool play, const char *play_file, int hold_ms)
{
    static char path[300];
    char *t = h_read_text("tests/integration/sipp/callee_call.xml");
    cr_assert(t, "tests/integration/sipp/callee_call.xml");
    snprintf(path, sizeof(path), "%s/caller.xml", callee.dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    for (char *p = t; *p;) {
        if (!strncmp(p, "@MEDIA_PORT@", 12)) {
            fputs(play ? "[rtpstream_audio_port]" : "[media_port]", f);
            p += 12;
        } else if (!strncmp(p, "@PLAY@", 6)) {
            if (play)
                fprintf(f, "  <nop><action><exec rtp_stream=\"%s,-1,0\"/></action></nop>",
                        play_file);
            p += 6;
        } else if (!strncmp(p, "@HOLD_MS@", 9)) {
            fprintf(f, "%d", hold_ms);
            p += 9;
        } else
            fputc(*p++, f);
    }
    fclose(f);
    free(t);
    return path;
}

/* Runs SIPp as the caller of number with scenario sf, to its end, echoing
 * the callee's RTP back to it with echo (not while it plays a file: both
 * would go out as two streams); extra
 * arguments NULL-ended (NULL: one call, -m 1). Returns its exit code (0: every call succeeded). */
static int sipp_call_once(const char *sf, const char *number, bool echo, const char *const *extra)
{
    char target[64], mp[16], cp[16], log[300], errf[300];
    int media = free_udp_pair();
    snprintf(target, sizeof(target), "127.0.0.1:%d", callee.port);
    snprintf(mp, sizeof(mp), "%d", media);
    snprintf(cp, sizeof(cp), "%d", h_free_port());
    snprintf(log, sizeof(log), "%s/sipp-%s.log", callee.dir, number);
    snprintf(errf, sizeof(errf), "%s/sipp-%s-errors.log", callee.dir, number);
    /* -p 0: SIPp's own SIP port is any free one; -mp is its echo (and
     * +2); -cp its control port, never the default 8888. */
    const char *argv[48] = {"sipp",
                            "-sf",
                            sf,
                            "-s",
                            number,
                            target,
                            "-i",
                            "127.0.0.1",
                            "-mi",
                            "127.0.0.1",
                            "-p",
                            "0",
                            "-mp",
                            mp,
                            "-cp",
                            cp,
                            echo ? "-rtp_echo" : "-nostdin",
                            "-nostdin",
                            "-trace_err",
                            "-error_file",
                            errf,
                            "-timeout",
                            "60",
                            "-buff_size",
                            "4194304"};
    int n = 25;
    for (int i = 0; extra && extra[i] && n < 47; i++)
        argv[n++] = extra[i];
    if (!extra) { /* one call, then SIPp ends */
        argv[n++] = "-m";
        argv[n++] = "1";
    }
    argv[n] = NULL;
    pid_t parent = getpid(), pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execvp("sipp", (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* sipp_call_once, again with other ports while SIPp could not bind one: a
 * port found free can be taken by another test's socket before SIPp binds
 * it (found by make test: "Unable to bind remote control socket", errno 98).
 * SIPp binds its ports before it places a call, so a retry calls once. */
static int sipp_call(const char *sf, const char *number, bool echo, const char *const *extra)
{
    char logs[2][300];
    snprintf(logs[0], sizeof(logs[0]), "%s/sipp-%s-errors.log", callee.dir, number);
    snprintf(logs[1], sizeof(logs[1]), "%s/sipp-%s.log", callee.dir, number);
    for (int tries = 1;; tries++) {
        int rc = sipp_call_once(sf, number, echo, extra);
        bool port_taken = false;
        for (int i = 0; i < 2 && rc; i++) {
            char *text = h_read_text(logs[i]);
            port_taken |= text && strstr(text, "Unable to bind");
            free(text);
        }
        if (!port_taken || tries == 5)
            return rc;
    }
}

/* The report line of number's call (malloc'd), waiting up to 3 s for it. */
static void expect_str(const char *json, const char *path, const char *want)
{
    char *v = h_json_path(json, path);
    cr_expect(v && !strcmp(v, want), "%s: \"%s\", wanted \"%s\" in %s", path, v ? v : "(none)",
              want, json);
    free(v);
}

Test(callee, answers_sends_its_greeting_and_keys_and_records_them, .timeout = 60, .fini = teardown)
{
    char tone[300], rules[1024];
    h_test_file(tone, sizeof(tone), "hello.wav");
    h_tone_wav(tone, 1000, 1.5);
    /* Numbers not listed are refused: only the listed one answers. */
    snprintf(rules, sizeof(rules),
             "{\"default\": {\"reject\": 404},"
             " \"numbers\": {\"15550100\": {\"reject\": null, \"ring_ms\": 300,"
             " \"greeting\": \"%s\", \"greeting_after_ms\": 200,"
             " \"digits\": \"12#\", \"digits_at_ms\": 2000}}}",
             tone);
    h_callee_start(&callee, rules, NULL);

    cr_assert_eq(sipp_call(scenario(false, NULL, 3000), "15550100", true, NULL), 0,
                 "SIPp's call failed; see %s", callee.dir);
    char *r = h_callee_report(&callee, "15550100");
    cr_expect(strstr(r, "\"answered\":true"), "%s", r);
    cr_expect_eq(h_json_num(r, "code"), 200);
    expect_str(r, "codec", "PCMU");
    expect_str(r, "hangup", "caller");
    expect_str(r, "digits_sent", "12#");
    /* SIPp echoes every packet: the events came back. */
    expect_str(r, "digits_received", "12#");
    expect_str(r, "headers.X-Outbound-Customer", "Ada");
    cr_expect(h_json_num(r, "ring_ms") >= 290, "%s", r);
    cr_expect(h_json_num(r, "packets") >= 120, "3 s of echoed audio: %s", r);
    cr_expect(h_json_num(r, "first_packet_ms") < 200, "%s", r);
    double p50 = h_json_num(r, "gap_p50_ms"), p99 = h_json_num(r, "gap_p99_ms");
    cr_expect(p50 >= 15 && p50 <= 25, "gap p50 %.1f ms: %s", p50, r);
    cr_expect(p99 >= p50 && p99 < 80, "gap p99 %.1f ms: %s", p99, r);
    cr_expect(h_json_num(r, "gap_max_ms") >= p99, "%s", r);
    double dur = h_json_num(r, "duration_ms");
    cr_expect(dur > 2800 && dur < 4500, "%s", r);

    char *rec = h_json_path(r, "record");
    cr_assert(rec, "%s", r);
    size_t n = 0;
    int16_t *s = h_wav_read(rec, &n);
    cr_expect(n >= (size_t)(2.5 * H_RATE), "%zu samples", n);
    /* The greeting (0.2 s to 1.7 s after the answer) came back as 1 kHz... */
    cr_expect(h_rms(s, n, 0.4, 1.5) > 2000, "greeting rms %.0f", h_rms(s, n, 0.4, 1.5));
    cr_expect(h_tone_share(s, n, 0.4, 1.5, 1000) > 0.8, "1 kHz share %.2f",
              h_tone_share(s, n, 0.4, 1.5, 1000));
    /* ... then silence: the keys went as events, not audio. */
    cr_expect(h_rms(s, n, 1.9, 2.8) < 100, "after the greeting rms %.0f", h_rms(s, n, 1.9, 2.8));
    free(s);
    free(rec);
    free(r);
    cr_expect_eq(h_callee_stop(&callee), 0);
}

Test(callee, records_what_the_caller_plays, .timeout = 60, .fini = teardown)
{
    /* SIPp plays raw mu-law (rtp_stream sends the file's bytes as they are). */
    char file[300];
    h_test_file(file, sizeof(file), "play.ul");
    size_t n = 4 * H_RATE;
    uint8_t *ul = malloc(n);
    for (size_t i = 0; i < n; i++)
        ul[i] = linear_to_ulaw((int)(8000 * sin(2 * M_PI * 600 * (double)i / H_RATE)));
    h_write_file(file, ul, n);
    free(ul);
    h_callee_start(&callee, "{\"numbers\": {\"15550200\": {}}}", NULL);

    cr_assert_eq(sipp_call(scenario(true, file, 3000), "15550200", false, NULL), 0,
                 "SIPp's call failed; see %s", callee.dir);
    char *r = h_callee_report(&callee, "15550200");
    cr_expect(h_json_num(r, "packets") >= 100, "%s", r);
    cr_expect(h_json_num(r, "bytes") >= 100 * 160, "%s", r);
    double p50 = h_json_num(r, "gap_p50_ms");
    cr_expect(p50 >= 15 && p50 <= 25, "gap p50 %.1f ms: %s", p50, r);
    char *rec = h_json_path(r, "record");
    cr_assert(rec, "%s", r);
    int16_t *s = h_wav_read(rec, &n);
    cr_expect(h_rms(s, n, 0.5, 2.5) > 2000, "rms %.0f", h_rms(s, n, 0.5, 2.5));
    cr_expect(h_tone_share(s, n, 0.5, 2.5, 600) > 0.8, "600 Hz share %.2f",
              h_tone_share(s, n, 0.5, 2.5, 600));
    cr_expect(h_tone_share(s, n, 0.5, 2.5, 1000) < 0.05, "1 kHz share %.2f",
              h_tone_share(s, n, 0.5, 2.5, 1000));
    free(s);
    free(rec);
    free(r);
    cr_expect_eq(h_callee_stop(&callee), 0);
}

Test(callee, inband_keys_are_tones_in_the_audio, .timeout = 60, .fini = teardown)
{
    h_callee_start(&callee,
                   "{\"numbers\": {\"15550300\": {\"codec\": \"PCMA\", \"digits\": \"15,9\","
                   " \"dtmf_mode\": \"inband\", \"digits_after_ms\": 300}}}",
                   NULL);
    cr_assert_eq(sipp_call(scenario(false, NULL, 3000), "15550300", true, NULL), 0,
                 "SIPp's call failed; see %s", callee.dir);
    char *r = h_callee_report(&callee, "15550300");
    expect_str(r, "codec", "PCMA");
    expect_str(r, "digits_sent", "159");
    expect_str(r, "digits_received", ""); /* no events: the keys were audio */
    char *rec = h_json_path(r, "record");
    cr_assert(rec, "%s", r);
    size_t n = 0;
    int16_t *s = h_wav_read(rec, &n);
    dtmf_rx_state_t *rx = dtmf_rx_init(NULL, NULL, NULL);
    dtmf_rx(rx, s, (int)n);
    char heard[16] = "";
    dtmf_rx_get(rx, heard, sizeof(heard) - 1);
    dtmf_rx_free(rx);
    cr_expect_str_eq(heard, "159", "the recording's keys");
    free(s);
    free(rec);
    free(r);
    cr_expect_eq(h_callee_stop(&callee), 0);
}

/* A rejected number gets its code, and its call is reported unanswered. */
ParameterizedTestParameters(callee, rejects_with_the_rules_code)
{
    static int codes[] = {404, 480, 486, 503};
    return cr_make_param_array(int, codes, sizeof(codes) / sizeof(codes[0]));
}

ParameterizedTest(int *code, callee, rejects_with_the_rules_code, .timeout = 60, .fini = teardown)
{
    char rules[256];
    snprintf(rules, sizeof(rules), "{\"numbers\": {\"15550400\": {\"reject\": %d}}}", *code);
    h_callee_start(&callee, rules, NULL);
    cr_assert_eq(sipp_call(scenario(false, NULL, 1000), "15550400", true, NULL), 0,
                 "SIPp's call failed; see %s", callee.dir);
    char *r = h_callee_report(&callee, "15550400");
    cr_expect_eq(h_json_num(r, "code"), *code, "%s", r);
    cr_expect(strstr(r, "\"answered\":false"), "%s", r);
    expect_str(r, "hangup", "rejected");
    cr_expect(strstr(r, "\"record\":null"), "%s", r);
    free(r);
    cr_expect_eq(h_callee_stop(&callee), 0);
}

Test(callee, answers_options_and_a_cancel_while_ringing, .timeout = 60, .fini = teardown)
{
    h_callee_start(&callee, "{\"numbers\": {\"15550500\": {\"ring_ms\": 10000}}}", NULL);
    cr_assert_eq(sipp_call("tests/integration/sipp/callee_cancel.xml", "15550500", true, NULL), 0,
                 "OPTIONS or the CANCEL failed; see %s", callee.dir);
    char *r = h_callee_report(&callee, "15550500");
    cr_expect_eq(h_json_num(r, "code"), 487, "%s", r);
    cr_expect(strstr(r, "\"answered\":false"), "%s", r);
    expect_str(r, "hangup", "cancel");
    free(r);
    cr_expect_eq(h_callee_stop(&callee), 0);
}

/* SIPp's scenario sends a REFER to numbers starting "refer" and waits for
 * the 202 and the NOTIFY, or the 603: it fails on anything else. */
Test(callee, refer_is_accepted_or_declined_and_reported, .timeout = 60, .fini = teardown)
{
    h_callee_start(&callee,
                   "{\"numbers\": {\"refer-yes\": {\"accept_refer\": true},"
                   " \"refer-no\": {}, \"15550600\": {\"hangup_after_ms\": 1000}}}",
                   NULL);
    const char *sf = scenario(false, NULL, 2000);
    cr_expect_eq(sipp_call(sf, "refer-yes", true, NULL), 0, "202 and NOTIFY; see %s", callee.dir);
    cr_expect_eq(sipp_call(sf, "refer-no", true, NULL), 0, "603; see %s", callee.dir);
    cr_expect_eq(sipp_call(sf, "15550600", true, NULL), 0, "the callee's BYE; see %s", callee.dir);
    char *yes = h_callee_report(&callee, "refer-yes"), *no = h_callee_report(&callee, "refer-no"),
         *bye = h_callee_report(&callee, "15550600");
    cr_expect(strstr(yes, "\"refer\":true"), "%s", yes);
    expect_str(yes, "refer_to", "<sip:agent-7@127.0.0.1>");
    cr_expect(strstr(no, "\"refer\":true"), "%s", no);
    expect_str(bye, "hangup", "callee");
    double dur = h_json_num(bye, "duration_ms");
    cr_expect(dur >= 1000 && dur < 1300, "%s", bye);
    free(yes);
    free(no);
    free(bye);
    cr_expect_eq(h_callee_stop(&callee), 0);
}

/* Bad rules stop it at start with exit 78 and a message naming the field. */
typedef struct {
    char rules[96]; /* the file's text (arrays: the table is copied into each test process) */
    char names[48]; /* what the message must name */
} bad_rules_t;

ParameterizedTestParameters(callee, bad_rules_are_refused_by_name)
{
    static bad_rules_t cases[] = {
        {"{\"numbers\": {\"5\": {\"codec\": \"G729\"}}}", "numbers.5.codec"},
        {"{\"numbers\": {\"5\": {\"ring\": 100}}}", "numbers.5.ring: unknown field"},
        {"{\"default\": {\"reject\": 200}}", "default.reject"},
        {"{\"default\": {\"digits\": \"12x\"}}", "default.digits"},
        {"{\"default\": {\"greeting\": \"/nonexistent.wav\"}}", "/nonexistent.wav"},
        {"{\"numbers\": [1]}", "numbers"},
        {"{\"default\": {}", "not valid JSON"},
    };
    return cr_make_param_array(bad_rules_t, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(bad_rules_t *c, callee, bad_rules_are_refused_by_name, .timeout = 30)
{
    char path[300], bin[512], cmd[1200];
    h_test_file(path, sizeof(path), "rules.json");
    h_write_file(path, c->rules, strlen(c->rules));
    h_callee_bin(bin, sizeof(bin));
    snprintf(cmd, sizeof(cmd), "%s --listen 127.0.0.1:0 --rules %s 2>&1", bin, path);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char out[2048] = "";
    size_t got = fread(out, 1, sizeof(out) - 1, p);
    out[got] = 0;
    int status = pclose(p);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 78, "exit %d: %s", status, out);
    cr_expect(strstr(out, c->names), "\"%s\" not named in: %s", c->names, out);
}

/* The benchmark's shape, small: 200 calls at once with RTP both ways, held
 * 10 s, every one reported with its audio. How evenly it came is the
 * benchmark's to measure (bench/media.sh): here, with other tests beside it,
 * only that its median gap is a packet's. */
Test(callee, holds_two_hundred_calls_with_rtp, .timeout = 120, .fini = teardown)
{
    h_callee_start(&callee, "{}", (const char *const[]){"--max-calls", "300", NULL});
    const char *extra[] = {"-l", "200", "-m", "200", "-r", "100", NULL};
    cr_assert_eq(sipp_call(scenario(false, NULL, 10000), "15550700", true, extra), 0,
                 "SIPp's calls failed; see %s", callee.dir);
    cr_assert_eq(h_callee_stop(&callee), 0);
    char *text = h_read_text(callee.report);
    cr_assert(text);
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        lines++;
        cr_expect(strstr(line, "\"answered\":true") && strstr(line, "\"hangup\":\"caller\""), "%s",
                  line);
        cr_expect(h_json_num(line, "packets") >= 400, "10 s of echoed audio: %s", line);
        double p50 = h_json_num(line, "gap_p50_ms");
        cr_expect(p50 >= 15 && p50 <= 25, "gap p50 %.1f ms: %s", p50, line);
    }
    cr_expect_eq(lines, 200, "calls reported");
    free(text);
}
