/*
 * Call-control documents through the real sip carrier, heard by the test
 * callee (tests/callee, docs/testing-callee.md) on loopback, which answers
 * as a person or a machine, presses keys (RFC 4733 or in-band tones) and
 * records what it hears. What is checked is what a listener would notice:
 * speech where a say was, the played file's tone at its frequency and cut
 * by the key pressed over it, silence before our first words, the
 * voicemail message starting right after the machine's beep, an agent's
 * voice relayed after a connect; and what the API says the verbs did.
 * Speech is espeak-ng's, the machine's beep and the agent's tone sox's.
 */
#include "harness_callee.h"
#include "harness_client.h"
#include "ob_common.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* The dialer's SIP and RTP ports: 30000-30099 is this test's. */
#define DIALER_SIP 30001
#define RTP_MIN    30010
#define RTP_MAX    30049

#define TONE_HZ  600.0 /* the played file */
#define TONE_S   4.0
#define AGENT_HZ 800.0 /* what the agent says, a tone */

static h_stack_t s;
static h_callee_t callee;
static pid_t files_pid;     /* python3 -m http.server with the files played */
static h_server_t *app_srv; /* the action_url application */

static void teardown(void)
{
    h_stack_kill(&s);
    h_callee_kill(&callee);
    if (files_pid > 0) {
        kill(files_pid, SIGKILL);
        waitpid(files_pid, NULL, 0);
        files_pid = 0;
    }
    h_server_stop(app_srv);
    app_srv = NULL;
}

static int on_action(void *arg, const char *head, const char *body, size_t len, const char **answer)
{
    (void)arg;
    (void)head;
    (void)len;
    *answer = strstr(body, "\"digits\":\"42\"")
                  ? "{\"verbs\":[{\"verb\":\"say\",\"text\":\"Thank you. Goodbye.\"},"
                    "{\"verb\":\"hangup\"}]}"
                  : "{\"verbs\":[{\"verb\":\"say\",\"text\":\"That was not right.\"}]}";
    return 200;
}

/* Runs a shell command (the test's own, fixed text); asserts it worked. */
static void shell(const char *fmt, ...) OB_PRINTF(1, 2);
static void shell(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
}

/* The length of an audio file in seconds (soxi). */
static double seconds_of(const char *path)
{
    char cmd[600], out[64] = "";
    snprintf(cmd, sizeof(cmd), "soxi -D '%s'", path);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    cr_assert(fgets(out, sizeof(out), p));
    pclose(p);
    return atof(out);
}

/* Serves dir over HTTP on port (python3 -m http.server). */
static void files_start(const char *dir, int port)
{
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    pid_t parent = getpid();
    files_pid = fork();
    cr_assert(files_pid >= 0);
    if (files_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execlp("python3", "python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir,
               p, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        h_resp_t r = h_http(port, "GET", "/", NULL, NULL);
        int status = r.status;
        h_resp_free(&r);
        if (status == 200)
            return;
        h_sleep_ms(50);
    }
    cr_assert_fail("the file server did not start");
}

/* The first 20 ms frame at or after from_s louder than rms, in seconds;
 * -1 when none. */
static double first_loud(const int16_t *x, size_t n, double from_s, double level)
{
    for (double t = from_s; t + 0.02 <= (double)n / H_RATE; t += 0.02)
        if (h_rms(x, n, t, t + 0.02) > level)
            return t;
    return -1;
}

static char *queue_doc(const h_client_t *c, const char *phone, const char *doc)
{
    char *body = ob_xasprintf("{\"phone_number\":\"%s\",\"max_attempts\":1,"
                              "\"call_parameters\":{\"customer\":\"Ada\"},\"app\":%s}",
                              phone, doc);
    char *id = h_queue_json(c, body);
    free(body);
    cr_assert_not_null(id, "not queued: %s", doc);
    return id;
}

Test(app_sip, documents_are_heard_keys_gathered_voicemail_left_after_the_beep_and_calls_handed_over,
     .timeout = 240, .fini = teardown)
{
    /* The audio: a person's "Hello?", a machine's greeting and beep, the
     * file a play fetches, the agent's voice (a tone). */
    char hello[300], machine[300], greet[300], beep[300], gap[300], tone[300], agent[300];
    char late[300], shortg[300], gap2[300];
    h_test_file(hello, sizeof(hello), "hello.wav");
    h_test_file(greet, sizeof(greet), "greet.wav");
    h_test_file(gap, sizeof(gap), "gap.wav");
    h_test_file(beep, sizeof(beep), "beep.wav");
    h_test_file(machine, sizeof(machine), "machine.wav");
    h_test_file(agent, sizeof(agent), "agent.wav");
    h_test_file(tone, sizeof(tone), "tone.wav");
    h_test_file(late, sizeof(late), "late.wav");
    h_test_file(shortg, sizeof(shortg), "short.wav");
    h_test_file(gap2, sizeof(gap2), "gap2.wav");
    shell("espeak-ng -v en-us -w '%s' 'Hello?'", hello);
    shell("espeak-ng -v en-us -w '%s' 'Hi, you have reached Sam. I cannot take your call right "
          "now. Please leave a message after the tone.'",
          greet);
    shell("sox -n -r 22050 -c 1 -b 16 '%s' trim 0 0.4", gap);
    shell("sox -n -r 22050 -c 1 -b 16 '%s' synth 0.6 sine 1000 vol 0.5", beep);
    shell("sox '%s' '%s' '%s' '%s'", greet, gap, beep, machine);
    /* A short greeting whose beep comes 2.5 s after it: a person until the beep. */
    shell("espeak-ng -v en-us -w '%s' 'Hi, it is Sam.'", shortg);
    shell("sox -n -r 22050 -c 1 -b 16 '%s' trim 0 2.5", gap2);
    shell("sox '%s' '%s' '%s' '%s'", shortg, gap2, beep, late);
    shell("sox -n -r 8000 -c 1 -b 16 '%s' synth 6 sine %g vol 0.5", agent, AGENT_HZ);
    h_tone_wav(tone, TONE_HZ, TONE_S);
    double machine_s = seconds_of(machine);
    double late_s = seconds_of(late);
    char dir[300];
    snprintf(dir, sizeof(dir), "%.*s", (int)(strrchr(tone, '/') - tone), tone);

    char rules[3072];
    snprintf(rules, sizeof(rules),
             "{\"default\": {\"ring_ms\": 300},"
             " \"numbers\": {"
             "  \"+12125550100\": {\"greeting\": \"%s\", \"greeting_after_ms\": 200,"
             "   \"digits\": \"42#\", \"digits_after_ms\": 5000},"
             "  \"+12125550101\": {\"greeting\": \"%s\", \"greeting_after_ms\": 200, \"codec\": "
             "\"PCMA\", \"digits\": \"7\", \"dtmf_mode\": \"inband\", \"digits_after_ms\": 1200},"
             "  \"+12125550110\": {\"greeting\": \"%s\", \"greeting_after_ms\": 100},"
             "  \"+12125550120\": {\"greeting\": \"%s\", \"greeting_after_ms\": 200},"
             "  \"+12125550130\": {\"send_rtp\": false},"
             "  \"+12125550140\": {\"greeting\": \"%s\", \"greeting_after_ms\": 100},"
             "  \"+12125559000\": {\"greeting\": \"%s\", \"greeting_after_ms\": 300,"
             "   \"hangup_after_ms\": 4000}}}",
             hello, hello, machine, hello, late, agent);
    h_callee_start(&callee, rules, NULL);
    int files_port = h_free_port();
    files_start(dir, files_port);
    app_srv = h_server_start(on_action, NULL);

    char trunk[64], sip_port[32], rtp_min[40], rtp_max[40];
    snprintf(trunk, sizeof(trunk), "OB_SIP_TRUNK=127.0.0.1:%d", callee.port);
    snprintf(sip_port, sizeof(sip_port), "OB_SIP_PORT=%d", DIALER_SIP);
    snprintf(rtp_min, sizeof(rtp_min), "OB_SIP_RTP_PORT_MIN=%d", RTP_MIN);
    snprintf(rtp_max, sizeof(rtp_max), "OB_SIP_RTP_PORT_MAX=%d", RTP_MAX);
    const char *const dialer_env[] = {"OB_DIALER_CARRIER=sip",
                                      trunk,
                                      sip_port,
                                      rtp_min,
                                      rtp_max,
                                      "OB_DIALER_CHANNELS=10",
                                      "OB_DIALER_APP_TIMEOUT_MS=3000",
                                      "OB_DRAIN_TIMEOUT_MS=2000",
                                      NULL};
    h_tenant_t t;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 10);
    h_client_t c = h_client(&s, &t, pg);
    cr_assert(h_stack_up(&s, 1, dialer_env));

    char doc_person[1024];
    snprintf(doc_person, sizeof(doc_person),
             "[{\"verb\":\"say\",\"text\":\"Hello {{customer}}, this is a reminder from the "
             "dental office.\"},"
             "{\"verb\":\"gather\",\"finish_on_key\":\"#\",\"timeout_s\":6,"
             "\"action_url\":\"http://127.0.0.1:%d/action\","
             "\"prompt\":[{\"verb\":\"play\",\"url\":\"http://127.0.0.1:%d/%s\"}]}]",
             h_server_port(app_srv), files_port, strrchr(tone, '/') + 1);
    char *person = queue_doc(&c, "+12125550100", doc_person);
    char *inband = queue_doc(&c, "+12125550101",
                             "[{\"verb\":\"gather\",\"num_digits\":1,\"timeout_s\":8,"
                             "\"prompt\":[{\"verb\":\"say\",\"text\":\"Press seven now.\"}]}]");
    char *vm = queue_doc(&c, "+12125550110",
                         "{\"verbs\":[{\"verb\":\"say\",\"text\":\"Hi there.\"}],"
                         "\"machine\":[{\"verb\":\"say\",\"text\":\"This is a message from the "
                         "dental office for Sam. Please call us back.\"}]}");
    char *latevm = queue_doc(&c, "+12125550140",
                             "{\"verbs\":[{\"verb\":\"say\",\"text\":\"Hello Sam, this is the "
                             "dental office calling about your appointment tomorrow.\"}],"
                             "\"machine\":[{\"verb\":\"say\",\"text\":\"This is a message from "
                             "the dental office for Sam.\"}]}");
    char *mute = queue_doc(&c, "+12125550130", "[{\"verb\":\"say\",\"text\":\"Hello?\"}]");
    char *handed = queue_doc(&c, "+12125550120",
                             "[{\"verb\":\"say\",\"text\":\"Connecting you to an agent.\"},"
                             "{\"verb\":\"connect\",\"to\":\"+12125559000\",\"timeout_s\":10}]");

    /* 1. A person: the message, a key pressed over the played file, the
     * action_url's next document. */
    char *call = h_wait_completed(&c, person, 90000);
    cr_assert_not_null(call, "the person's call did not complete");
    h_expect_path(call, "result", "voice");
    h_expect_path(call, "digits", "42");
    h_expect_path(call, "attempts.0.verbs.0.verb", "say");
    h_expect_path(call, "attempts.0.verbs.0.outcome", "played");
    h_expect_path(call, "attempts.0.verbs.1.verb", "gather");
    h_expect_path(call, "attempts.0.verbs.1.outcome", "finish_on_key");
    h_expect_path(call, "attempts.0.verbs.1.digits", "42");
    h_expect_path(call, "attempts.0.verbs.2.verb", "say");
    h_expect_path(call, "attempts.0.verbs.2.outcome", "played");
    h_expect_path(call, "attempts.0.verbs.3.verb", "hangup");
    long first_ms = h_json_long(call, "attempts.0.first_audio_ms");
    long gap_ms = h_json_long(call, "attempts.0.first_audio_gap_ms");
    long said_ms = h_json_long(call, "attempts.0.verbs.0.duration_ms");
    cr_expect(gap_ms >= 0 && gap_ms < 1000, "first audio %ld ms after the greeting", gap_ms);
    char *rep = h_callee_report(&callee, "+12125550100");
    cr_assert(strstr(rep, "\"digits_sent\":\"42#\""), "%s", rep);
    /* Sent as a stream, never stalled (how evenly is make bench-media's). */
    cr_expect_lt(h_json_num(rep, "gap_max_ms"), 1000.0, "our RTP stalled: %s", rep);
    char *rec = h_json_path(rep, "record");
    cr_assert_not_null(rec, "%s", rep);
    size_t n = 0;
    int16_t *x = h_wav_read(rec, &n);
    double first = first_ms / 1000.0;
    /* Silence before our first words; speech while the say played; the
     * played file's tone after it, cut by the first key (pressed 5 s into
     * what the callee heard), long before its 4 s were over. */
    cr_expect_lt(h_rms(x, n, 0.05, first - 0.05), 100.0, "sound before our first audio");
    cr_expect_gt(h_rms(x, n, first, first + said_ms / 1000.0), 800.0, "no speech in the say");
    double tone_at = first + said_ms / 1000.0;
    cr_expect_gt(h_tone_share(x, n, tone_at + 0.2, tone_at + 0.7, TONE_HZ), 0.8,
                 "the played file's %g Hz is not what the callee heard", TONE_HZ);
    double tone_end = tone_at;
    for (double at = tone_at; at + 0.1 < (double)n / H_RATE; at += 0.1)
        if (h_tone_share(x, n, at, at + 0.1, TONE_HZ) > 0.8)
            tone_end = at + 0.1;
    double key = first + 5.0;
    cr_expect(tone_end > key - 0.1 && tone_end < key + 0.5 && tone_end < tone_at + TONE_S - 0.5,
              "the tone (from %.2f s) ended at %.2f s; the first key was pressed at %.2f s",
              tone_at, tone_end, key);
    free(x);
    free(rec);
    free(rep);
    free(call);

    /* 2. Keys as in-band tones. */
    call = h_wait_completed(&c, inband, 60000);
    cr_assert_not_null(call);
    h_expect_path(call, "attempts.0.verbs.0.verb", "gather");
    h_expect_path(call, "attempts.0.verbs.0.outcome", "num_digits");
    h_expect_path(call, "attempts.0.digits", "7");
    free(call);

    /* 3. A machine: the message starts right after the beep ends, whole
     * on the recording. */
    call = h_wait_completed(&c, vm, 90000);
    cr_assert_not_null(call);
    h_expect_path(call, "result", "answeringmachine");
    h_expect_path(call, "attempts.0.verbs.0.branch", "machine");
    h_expect_path(call, "attempts.0.verbs.0.outcome", "played");
    rep = h_callee_report(&callee, "+12125550110");
    rec = h_json_path(rep, "record");
    cr_assert_not_null(rec, "%s", rep);
    x = h_wav_read(rec, &n);
    double beep_end = 0.1 + machine_s; /* greeting_after_ms, then the file */
    double ours = first_loud(x, n, 0.0, 300.0);
    cr_expect(ours >= beep_end - 0.04 && ours <= beep_end + 0.3,
              "the message started at %.3f s, the beep ended at %.3f s", ours, beep_end);
    free(x);
    free(rec);
    free(rep);
    free(call);

    /* 3b. A short greeting, then its beep after a pause longer than the
     * wait for a person: the person's message starts, stops at the beep,
     * and the machine's starts after the beep, whole on the recording. */
    call = h_wait_completed(&c, latevm, 90000);
    cr_assert_not_null(call);
    h_expect_path(call, "result", "answeringmachine");
    h_expect_path(call, "attempts.0.decided_by", "late_beep");
    h_expect_path(call, "attempts.0.verbs.0.outcome", "machine_beep");
    h_expect_path(call, "attempts.0.verbs.1.branch", "machine");
    h_expect_path(call, "attempts.0.verbs.1.outcome", "played");
    long revised_at = h_json_long(call, "attempts.0.verbs.1.started_ms");
    rep = h_callee_report(&callee, "+12125550140");
    rec = h_json_path(rep, "record");
    cr_assert_not_null(rec, "%s", rep);
    x = h_wav_read(rec, &n);
    beep_end = 0.1 + late_s;
    /* Our first words (to the person) came before the beep; after the beep
     * there is a gap (the say stopped), then the machine's message. */
    ours = first_loud(x, n, 0.0, 300.0);
    cr_expect_lt(ours, beep_end - 0.6, "the person's message started at %.3f s", ours);
    cr_expect_lt(h_rms(x, n, beep_end - 0.35, beep_end - 0.02), 100.0,
                 "the person's message went on over the beep");
    double again = first_loud(x, n, beep_end - 0.04, 300.0);
    cr_expect(again >= beep_end - 0.04 && again <= beep_end + 0.3,
              "the machine's message started at %.3f s, the beep ended at %.3f s", again, beep_end);
    cr_expect(labs(revised_at - (long)(again * 1000)) < 400,
              "the machine branch started at %ld ms, heard at %.3f s", revised_at, again);
    free(x);
    free(rec);
    free(rep);
    free(call);
    free(latevm);

    /* 4. A connect: the agent's leg gets the call's parameters as
     * headers, and the callee hears the agent. */
    call = h_wait_completed(&c, handed, 90000);
    cr_assert_not_null(call);
    h_expect_path(call, "attempts.0.verbs.1.verb", "connect");
    h_expect_path(call, "attempts.0.verbs.1.outcome", "answered");
    h_expect_path(call, "attempts.0.verbs.1.to", "+12125559000");
    char *agent_rep = h_callee_report(&callee, "+12125559000");
    cr_expect(strstr(agent_rep, "\"X-Outbound-customer\":\"Ada\""), "%s", agent_rep);
    free(agent_rep);
    rep = h_callee_report(&callee, "+12125550120");
    rec = h_json_path(rep, "record");
    cr_assert_not_null(rec, "%s", rep);
    x = h_wav_read(rec, &n);
    double heard = 0;
    for (double at = 1.0; at + 0.5 < (double)n / H_RATE; at += 0.25) {
        double share = h_tone_share(x, n, at, at + 0.5, AGENT_HZ);
        heard = share > heard ? share : heard;
    }
    cr_expect_gt(heard, 0.8, "the agent's %g Hz never reached the callee", AGENT_HZ);
    free(x);
    free(rec);
    free(rep);
    char *types = h_event_types(&s, handed, 5, 20000);
    cr_expect(types && strstr(types, "outbound.call.handed_over"), "%s", types ? types : "none");
    free(types);
    free(call);

    /* 5. A line that carries no audio: no verdict ever comes, and the
     * verbs start anyway once the detector's analysis time is over. */
    call = h_wait_completed(&c, mute, 60000);
    cr_assert_not_null(call);
    h_expect_path(call, "attempts.0.verbs.0.verb", "say");
    h_expect_path(call, "attempts.0.verbs.0.outcome", "played");
    long started = h_json_long(call, "attempts.0.verbs.0.started_ms");
    cr_expect(started >= 6500 && started <= 8500, "the say started %ld ms after the answer",
              started);
    free(call);
    free(mute);

    free(person);
    free(inband);
    free(vm);
    free(handed);
    cr_expect(h_stack_down(&s));
    cr_expect_eq(h_callee_stop(&callee), 0);
}
