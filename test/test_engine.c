/* test_engine.c: the call engine (src/engine.c) driven in C with a fake
 * clock - no Lua, no socket, no sleep. Each scenario is a script of
 * driver events and the answers the engine must give. Prints "N passed,
 * N failed"; exits non-zero on any failure. */
#include "engine.h"
#include "secrets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond, what) check((cond), (what), __LINE__)

static void check(int ok, const char *what, int line)
{
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL line %d: %s\n", line, what);
    }
}

static mq_engine *engine(int max_retries, int retry_post, double max_wait, double deadline)
{
    mq_engine_cfg cfg = {
        .timeout = 3, .connect_timeout = 1, .deadline = deadline,
        .max_retries = max_retries, .retry_post = retry_post, .max_wait = max_wait,
        .limiter_period = 60, .base_url = "https://api.example/v1/",
        .api_key = "api-key-123", .secret_key = "s3cr3t/AbCd+EfGh==",
    };
    mq_engine *e;
    char err[128];
    if (mq_engine_new(&cfg, 42, &e, err, sizeof err) != 0) {
        printf("FAIL: mq_engine_new: %s\n", err);
        exit(1);
    }
    return e;
}

static mq_op_args create_args(const char *code)
{
    mq_op_args a;
    memset(&a, 0, sizeof a);
    a.op = MQ_OP_CREATE;
    a.code = code;
    a.code_len = strlen(code);
    a.patient = "p\"1";
    a.patient_len = 3;
    a.professional = "prof/1";
    a.professional_len = 6;
    memcpy(a.starts_at, "2030-05-20T10:00:00Z", MQ_ISO_LEN);
    a.duration = 900;
    return a;
}

static mq_answer answer(long status, const char *body)
{
    mq_answer r = { status, body, strlen(body), -1, -1, -1, -1 };
    return r;
}

static void test_create(void)
{
    mq_engine *e = engine(2, 0, -1, 30);
    mq_ecall c;
    mq_op_args a = create_args("A/1");
    mq_request rq;
    mq_step st;
    const char *code, *url;
    size_t cl, ul;

    mq_engine_call_init(&c);
    CHECK((st = mq_engine_start(e, &c, &a, 100)).action == MQ_A_SEND, "create: send at once (no limiter)");
    mq_engine_request(&c, &rq);
    CHECK(rq.method == MQ_M_POST, "create: POST");
    CHECK(strcmp(rq.url, "https://api.example/v1/appointments") == 0, "create: url");
    CHECK(strcmp(rq.path, "/v1/appointments") == 0, "create: path");
    CHECK(strcmp(rq.body, "{\"appointment\":{\"code\":\"A\\/1\",\"starts_at\":\"2030-05-20T10:00:00Z\","
                          "\"duration\":900},\"patient\":{\"code\":\"p\\\"1\"},"
                          "\"professional\":{\"hash\":\"prof\\/1\"}}") == 0, "create: body");
    mq_answer r = answer(200, "{\"data\":{\"appointment\":{\"code\":\"A\\/1\",\"url\":\"u\"}}}");
    CHECK((st = mq_engine_response(&c, &r, 100.1)).action == MQ_A_DONE, "create: done");
    CHECK(mq_engine_ok(&c), "create: ok");
    mq_engine_appointment(&c, &code, &cl, &url, &ul);
    CHECK(cl == 3 && memcmp(code, "A/1", 3) == 0 && ul == 1 && url[0] == 'u', "create: appointment");
    CHECK(c.text == NULL && c.fields == NULL, "create: nothing allocated on the success path");
    CHECK(!mq_engine_reconciled(&c), "create: a first-time success is not reconciled");
    CHECK(mq_engine_stats_of(e)->ok == 1 && mq_engine_stats_of(e)->requests == 1, "create: counted");
    mq_engine_call_free(&c);
    mq_engine_free(e);
}

static void test_confirm(void)
{
    mq_engine *e = engine(2, 1, 10, 5);
    mq_ecall c;
    mq_op_args a = create_args("C1");
    mq_engine_error err;
    mq_request rq;
    mq_step st;

    mq_engine_call_init(&c);
    CHECK((st = mq_engine_start(e, &c, &a, 0)).action == MQ_A_SLOT && st.max_wait == 5 && st.until == 5,
          "confirm: slot, cut to deadline");
    CHECK((st = mq_engine_slot(&c, 1, 0, -1, 0)).action == MQ_A_SEND, "confirm: send");
    mq_answer r = answer(500, "{\"message\":\"Server Error.\"}");
    CHECK((st = mq_engine_response(&c, &r, 0.1)).action == MQ_A_BACKOFF && st.backoff >= 0 && st.backoff <= 0.25
          && st.until == 0.1 + st.backoff,
          "confirm: backoff within the first ceiling");
    CHECK((st = mq_engine_wake(&c, 0.4)).action == MQ_A_SLOT, "confirm: slot again");
    CHECK((st = mq_engine_slot(&c, 1, 0, -1, 0.4)).action == MQ_A_SEND, "confirm: send again");
    r = answer(400, "{\"message\":\"Appointment already exists\"}");
    CHECK((st = mq_engine_response(&c, &r, 0.5)).action == MQ_A_SLOT, "confirm: the PUT takes a slot");
    CHECK((st = mq_engine_slot(&c, 1, 0, -1, 0.5)).action == MQ_A_SEND, "confirm: send the PUT");
    mq_engine_request(&c, &rq);
    CHECK(rq.method == MQ_M_PUT && strcmp(rq.path, "/v1/appointments/C1") == 0, "confirm: PUT path");
    r = answer(503, "{\"message\":\"Service Unavailable.\"}");
    CHECK((st = mq_engine_response(&c, &r, 0.6)).action == MQ_A_DONE, "confirm: no fresh retries");
    mq_engine_error_of(&c, &err);
    CHECK(err.kind == MQ_K_SERVER_ERROR && err.status == 503 && err.attempts == 3,
          "confirm: server_error 503 after 3 attempts");
    CHECK(err.effect == MQ_EFFECT_DONE && !err.retryable, "confirm: effect done, not retryable");
    CHECK(strcmp(err.message, "the appointment was created, but confirming it failed: "
                              "Service Unavailable.") == 0, "confirm: message");
    mq_engine_call_free(&c);
    mq_engine_free(e);
}

static void test_deadline_and_scrub(void)
{
    mq_engine *e = engine(2, 0, -1, 5);
    mq_ecall c;
    mq_op_args a;
    mq_engine_error err;
    mq_request rq;
    mq_step st;

    memset(&a, 0, sizeof a);
    a.op = MQ_OP_CANCEL;
    a.code = "../x";
    a.code_len = 4;
    mq_engine_call_init(&c);
    st = mq_engine_start(e, &c, &a, 0);
    (void)st;
    mq_engine_request(&c, &rq);
    CHECK(rq.method == MQ_M_DELETE && rq.body == NULL, "cancel: DELETE, no body");
    CHECK(strcmp(rq.path, "/v1/appointments/..%2Fx") == 0, "cancel: code encoded");
    CHECK((st = mq_engine_failure(&c, MQ_T_CONNECT, "refused", 0, 1)).action == MQ_A_BACKOFF, "cancel: retry");
    CHECK((st = mq_engine_wake(&c, 4.5)).action == MQ_A_SEND, "cancel: wake");
    mq_engine_request(&c, &rq);
    CHECK(rq.timeout == 0.5 && rq.connect_timeout == 0.5, "cancel: timeouts cut to the deadline");
    /* the secret, JSON-escaped two ways */
    mq_answer r = answer(403, "{\"message\":\"bad \\u0073\\u0033cr3t\\/AbCd+EfGh== and "
                              "s3cr3t\\/AbCd+EfGh==\"}");
    CHECK((st = mq_engine_response(&c, &r, 4.6)).action == MQ_A_DONE, "403: done");
    mq_engine_error_of(&c, &err);
    CHECK(strstr(err.message, "s3cr3t") == NULL, "403: the secret is scrubbed after unescaping");
    CHECK(strstr(err.message, "******************") != NULL, "403: masked");
    CHECK(err.kind == MQ_K_FORBIDDEN && err.effect == MQ_EFFECT_NONE, "403: forbidden, effect none");
    mq_engine_call_free(&c);
    mq_engine_free(e);
}

/* a create whose first attempt may have taken effect, "already exists" on
 * the retry, then a confirming PUT that succeeds: ok, and reconciled */
static void test_reconciled(void)
{
    mq_engine *e = engine(2, 1, -1, 30);
    mq_ecall c;
    mq_op_args a = create_args("R1");
    mq_step st;

    mq_engine_call_init(&c);
    CHECK((st = mq_engine_start(e, &c, &a, 0)).action == MQ_A_SEND, "reconciled: send");
    mq_answer r = answer(500, "{\"message\":\"Server Error.\"}");
    CHECK((st = mq_engine_response(&c, &r, 0.1)).action == MQ_A_BACKOFF, "reconciled: backoff");
    CHECK((st = mq_engine_wake(&c, 0.4)).action == MQ_A_SEND, "reconciled: send again");
    r = answer(400, "{\"message\":\"Appointment already exists\"}");
    CHECK((st = mq_engine_response(&c, &r, 0.5)).action == MQ_A_SEND, "reconciled: the confirming PUT");
    CHECK(!mq_engine_reconciled(&c), "reconciled: not before the call is done");
    r = answer(200, "{\"data\":{\"appointment\":{\"code\":\"R1\",\"url\":\"u\"}}}");
    CHECK((st = mq_engine_response(&c, &r, 0.6)).action == MQ_A_DONE, "reconciled: done");
    CHECK(mq_engine_ok(&c) && mq_engine_reconciled(&c), "reconciled: ok, owed to the first attempt");
    mq_engine_call_free(&c);
    mq_engine_free(e);
}

/* the scrub itself: every occurrence, at either end, back to back, after a
 * false start on the key's first byte; short keys left alone */
static void test_scrub(void)
{
    static const struct { const char *in, *out; } cases[] = {
        { "abcdef", "******" },
        { "xabcdef", "x******" },
        { "abcdefx", "******x" },
        { "abcdefabcdef", "************" },
        { "aabcdef", "a******" },
        { "abcdeabcdef", "abcde******" },
        { "abcde", "abcde" },
        { "a", "a" },
        { "zzSECRETxxzz", "zz********zz" },
        { "SECRETxabcdefSECRETxx", "SECRETx**************" },
    };
    mq_secrets s;
    char buf[64];
    CHECK(mq_secrets_init(&s, "abcdef", "SECRETxx") == 0, "scrub: init");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = strlen(cases[i].in);
        memcpy(buf, cases[i].in, n + 1);
        mq_secrets_scrub(&s, buf, n);
        CHECK(strcmp(buf, cases[i].out) == 0, cases[i].in);
    }
    mq_secrets_free(&s);
    CHECK(mq_secrets_init(&s, "abc", "abcdef") == 0, "scrub: init with a short key");
    memcpy(buf, "abc abcdef", 11);
    mq_secrets_scrub(&s, buf, 10);
    CHECK(strcmp(buf, "abc ******") == 0, "scrub: a key under 6 bytes is left alone");
    mq_secrets_free(&s);
}

/* the step after a response says, in named fields, what the shared
 * limiter is to note: a 429 pauses it, counts calibrate it */
static void test_note(void)
{
    mq_engine *e = engine(1, 0, 10, 30);
    mq_ecall c;
    mq_op_args a = create_args("N1");
    mq_step st;

    mq_engine_call_init(&c);
    mq_engine_start(e, &c, &a, 0);
    mq_engine_slot(&c, 1, 0, -1, 0);
    mq_answer r = answer(429, "{\"message\":\"Too Many Attempts.\"}");
    r.retry_after = 2;
    st = mq_engine_response(&c, &r, 0.1);
    CHECK(st.note.kind == MQ_NOTE_PAUSE && st.note.pause == 2, "note: a 429 pauses the budget");
    CHECK(st.action == MQ_A_BACKOFF && st.backoff >= 2 && st.until == 0.1 + st.backoff,
          "note: the backoff honours Retry-After");
    st = mq_engine_wake(&c, st.until);
    CHECK(st.action == MQ_A_SLOT && st.note.kind == MQ_NOTE_NONE, "note: a wake notes nothing");
    mq_engine_slot(&c, 1, 0, -1, st.until);
    r = answer(200, "{\"data\":{\"code\":\"N1\",\"url\":\"https://x.test/N1\"}}");
    r.rl_remaining = 7;
    r.rl_limit = 60;
    st = mq_engine_response(&c, &r, 2.5);
    CHECK(st.action == MQ_A_DONE && st.note.kind == MQ_NOTE_OBSERVE && st.note.remaining == 7
          && st.note.limit == 60 && st.note.reset == -1, "note: counts calibrate the budget");
    CHECK(mq_engine_note(&c).kind == MQ_NOTE_OBSERVE, "note: the call keeps the last note");
    mq_engine_call_free(&c);
    mq_engine_free(e);
}

/* a batch row's first slot, taken before its call started, said in the
 * engine's terms */
static void test_admitted(void)
{
    mq_engine *e = engine(1, 0, 10, 30);
    mq_ecall c;
    mq_op_args a = create_args("A1");
    mq_engine_error err;
    mq_step st;

    mq_engine_call_init(&c);
    st = mq_engine_start_admitted(e, &c, &a, 0, 1, 0.5, -1, NULL);
    CHECK(st.action == MQ_A_SEND && st.until == 30, "admitted: granted, send at once");
    CHECK(mq_engine_stats_of(e)->limiter_waits == 1, "admitted: the first wait is counted");
    st = mq_engine_start_admitted(e, &c, &a, 0, 0, 10, 3, NULL);
    mq_engine_error_of(&c, &err);
    CHECK(st.action == MQ_A_DONE && err.kind == MQ_K_RATE_LIMITED && err.retry_after == 3
          && err.effect == MQ_EFFECT_NONE, "admitted: no slot: rate_limited, nothing sent");
    st = mq_engine_start_admitted(e, &c, &a, 0, 0, 0, -1, "state file gone");
    mq_engine_error_of(&c, &err);
    CHECK(st.action == MQ_A_DONE && err.kind == MQ_K_CONFIG && !err.retryable,
          "admitted: a limiter fault ends the call as config");
    mq_engine_call_free(&c);
    mq_engine_free(e);
}

int main(void)
{
    test_create();
    test_confirm();
    test_deadline_and_scrub();
    test_reconciled();
    test_note();
    test_admitted();
    test_scrub();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
