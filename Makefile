# outbound: one non-recursive Makefile for the services, the shared library,
# the tests and the local stack. `make run` and `make test` are the two
# commands a newcomer needs; both install what is missing first.

CC       ?= cc
PKGS     := rdkafka libpq libcjson libmicrohttpd libcrypto libcurl icu-i18n spandsp espeak-ng samplerate
BUILD    := build
ifneq ($(SANITIZE),)
BUILD    := build/san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
# The fuzz targets (tests/fuzz) and everything they link, built by clang with
# libFuzzer's coverage and the sanitizers; `make fuzz` sets FUZZ=1.
ifneq ($(FUZZ),)
BUILD    := build/fuzz
CC       := clang
CXX      := clang++
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=all
endif

WARN     := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
CXXWARN  := -Wall -Wextra
ifneq ($(CI),)
WARN     += -Werror
CXXWARN  += -Werror
endif
# Parallel jobs for the builds that make run and make test start.
NPROC := $(shell nproc 2>/dev/null || echo 2)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS   ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(CFLAGS) $(WARN) $(SANFLAGS) -D_GNU_SOURCE -MMD -MP \
              -Icommon/infra -Icommon/domain -Iproto -I$(BUILD)/gen $(PKG_CFLAGS)
# common/domain/*.cc is the libphonenumber boundary, the only C++ (compiled with $(CXX)).
CXXFLAGS ?= -O2 -g
ALL_CXXFLAGS := -std=c++17 $(CXXFLAGS) $(CXXWARN) $(SANFLAGS) -D_GNU_SOURCE -MMD -MP \
                -Icommon/infra -Icommon/domain -Iproto -I$(BUILD)/gen $(PKG_CFLAGS)
LDLIBS   := $(PKG_LIBS) -lphonenumber -lstdc++ -lpthread -lm -lcsv
# The dialer's sip carrier (services/dialer/dialer_sip*.c) is the only user of
# libre, baresip's SIP stack; only the dialer links it.
dialer_LDLIBS := -lre
# libre.pc names no feature macros; without these re_types.h redefines bool.
LIBRE_CFLAGS := $(shell pkg-config --cflags libre 2>/dev/null) \
	-DHAVE_INTTYPES_H -DHAVE_STDBOOL_H -DHAVE_INET6 -DRELEASE
$(BUILD)/obj/services/dialer/dialer_sip.o $(BUILD)/obj/services/dialer/dialer_sip_media.o \
$(BUILD)/obj/services/dialer/dialer_sip_connect.o: ALL_CFLAGS += $(LIBRE_CFLAGS)
# --as-needed: a binary records only the libraries it uses (spandsp is the
# dialer's, through common/domain/ob_detect.c), which its image must then install.
ALL_LDFLAGS := $(LDFLAGS) $(SANFLAGS) -Wl,--as-needed
# Criterion re-executes the test binary for each test; parameter tables that
# point at string literals stay valid only in a position-dependent binary.
TEST_LDFLAGS := -no-pie

# The shared library in three layers, each using only those before it:
# common/infra (Kafka, Postgres, HTTP, settings, logs), proto (the topics'
# messages), common/domain (calls, vocabulary, phones, windows, detection).
# tools/check_layers.py keeps it so.
COMMON_SRC := $(wildcard common/infra/*.c) $(wildcard proto/*.c) $(wildcard common/domain/*.c)
COMMON_CXX_SRC := $(wildcard common/domain/*.cc)
MIGRATIONS := $(sort $(wildcard common/migrations/*.sql))
# The SQL functions, each defined once (common/sql; ob_pg_migrate).
SQL_FUNCTIONS := $(sort $(wildcard common/sql/*.sql))
GEN_SRC    := $(BUILD)/gen/ob_migrations.c
LIB_OBJ    := $(patsubst %.c,$(BUILD)/obj/%.o,$(COMMON_SRC)) \
              $(patsubst %.cc,$(BUILD)/obj/%.o,$(COMMON_CXX_SRC)) $(BUILD)/obj/gen/ob_migrations.o \
              $(BUILD)/obj/gen/ob_phone_data.o $(BUILD)/obj/gen/ob_phone_tz.o
LIB        := $(BUILD)/libob.a

SERVICES   := ingest scheduler dialer
BINS       := $(addprefix $(BUILD)/bin/outbound-,$(SERVICES))
# The command-line client (services/outboundctl), built like a service.
BINS       += $(BUILD)/bin/outboundctl

DETECT_EVAL := $(BUILD)/tests/detect/eval_detect
CALLEE      := $(BUILD)/tests/callee/ob-test-callee
# The limit tools of `make bench` (bench/limits): what the parts can do alone.
LIMIT_SRC  := $(wildcard bench/limits/*.c)
LIMIT_BINS := $(patsubst bench/limits/%.c,$(BUILD)/bench/%,$(LIMIT_SRC))

UNIT_SRC   := $(shell find tests/unit -name 'test_*.c' 2>/dev/null)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))
INTEG_SRC  := $(wildcard tests/integration/test_*.c)
INTEG_BINS := $(patsubst tests/integration/%.c,$(BUILD)/tests/integration/%,$(INTEG_SRC))
HARNESS_OBJ := $(BUILD)/obj/tests/integration/harness.o $(BUILD)/obj/tests/integration/harness_callee.o \
               $(BUILD)/obj/tests/integration/harness_client.o

FORMAT_SRC := $(shell git ls-files '*.c' '*.h' '*.cc' 2>/dev/null)

# Objects built on the way to a test binary are kept, not treated as intermediate.
.SECONDARY:

.PHONY: all deps run test bench-tools fuzz fuzz-quick fuzz-build unit-test integration-test browser-test stack-up stack-down format format-check \
        clean tests-build

all: $(BINS)

deps:
	@deploy/local/deps.sh

# The migrations' names, rewritten only when they change: a migration
# removed (or renamed) makes the embedded set again, as a new or edited one
# does (a removed one was left embedded: nothing listed was newer).
MIGRATIONS_STAMP := $(BUILD)/gen/migrations.list
$(MIGRATIONS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@printf '%s\n' $(MIGRATIONS) $(SQL_FUNCTIONS) | cmp -s - $@ || \
		printf '%s\n' $(MIGRATIONS) $(SQL_FUNCTIONS) >$@

$(GEN_SRC): tools/embed_migrations.sh tools/check_sql.py $(MIGRATIONS) $(SQL_FUNCTIONS) \
	    $(MIGRATIONS_STAMP)
	@mkdir -p $(dir $@)
	/usr/bin/python3 tools/check_sql.py
	tools/embed_migrations.sh $@ $(MIGRATIONS) -- $(SQL_FUNCTIONS)

$(BUILD)/obj/gen/ob_migrations.o: $(GEN_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Metadata facts libphonenumber's C++ API keeps private, from python3-phonenumbers.
$(BUILD)/gen/ob_phone_data.c: tools/gen_phone_data.py tools/phone_gen.py
	@mkdir -p $(dir $@)
	/usr/bin/python3 tools/gen_phone_data.py $@

$(BUILD)/obj/gen/ob_phone_data.o: $(BUILD)/gen/ob_phone_data.c common/domain/ob_phone_data.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Phone number prefix to IANA time zones, also from python3-phonenumbers.
$(BUILD)/gen/ob_phone_tz.c: tools/gen_phone_tz.py tools/phone_gen.py
	@mkdir -p $(dir $@)
	/usr/bin/python3 tools/gen_phone_tz.py $@

$(BUILD)/obj/gen/ob_phone_tz.o: $(BUILD)/gen/ob_phone_tz.c common/domain/ob_phone_tz.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Every object depends on the flags it is compiled with, include paths
# among them: a change of flags rebuilds them all. Without it, moving the
# headers of common/ into its layers left objects whose dependency files
# named the old paths, built against an old layout of a struct (ingest
# crashed in rd_kafka_committed until make clean).
FLAGS_STAMP := $(BUILD)/flags
$(FLAGS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@printf '%s\n' '$(ALL_CFLAGS)' '$(ALL_CXXFLAGS)' | cmp -s - $@ || \
		printf '%s\n' '$(ALL_CFLAGS)' '$(ALL_CXXFLAGS)' >$@
.PHONY: FORCE
FORCE:

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/%.o: %.cc $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The ingest serves its OpenAPI document from the binary.
$(BUILD)/gen/ingest_openapi.c: tools/embed_text.sh services/ingest/openapi.json
	@mkdir -p $(dir $@)
	tools/embed_text.sh $@ ingest_openapi_json services/ingest/openapi.json

$(BUILD)/obj/gen/ingest_openapi.o: $(BUILD)/gen/ingest_openapi.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# ... and the web console's static files.
CONSOLE_FILES := $(sort $(wildcard services/ingest/console/*))
$(BUILD)/gen/ingest_console_files.c: tools/embed_console.sh $(CONSOLE_FILES)
	@mkdir -p $(dir $@)
	tools/embed_console.sh $@ $(CONSOLE_FILES)

$(BUILD)/obj/gen/ingest_console_files.o: $(BUILD)/gen/ingest_console_files.c services/ingest/ingest_console.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Iservices/ingest -c -o $@ $<

# Each service links its own folder's objects with the shared library.
define service_rule
$(1)_OBJ := $$(patsubst %.c,$(BUILD)/obj/%.o,$$(wildcard services/$(1)/*.c))
$(BUILD)/bin/outbound-$(1): $$($(1)_OBJ) $$($(1)_OBJ_EXTRA) $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $(ALL_LDFLAGS) -o $$@ $$^ $(LDLIBS) $$($(1)_LDLIBS)
endef
ingest_OBJ_EXTRA := $(BUILD)/obj/gen/ingest_openapi.o $(BUILD)/obj/gen/ingest_console_files.o
$(foreach s,$(SERVICES),$(eval $(call service_rule,$(s))))

# outboundctl: its folder's objects with the shared library, like a service.
outboundctl_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard services/outboundctl/*.c))
$(BUILD)/bin/outboundctl: $(outboundctl_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# The limit tools link the shared library and ingest's settings and CSV reader.
$(BUILD)/bench/%: $(BUILD)/obj/bench/limits/%.o $(BUILD)/obj/services/ingest/ingest_config.o \
		$(BUILD)/obj/services/ingest/ingest_csv.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/bench/limits/%.o: bench/limits/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Iservices/ingest -c -o $@ $<

bench-tools: $(LIMIT_BINS)

# Unit tests of a service link that service's modules (all but main.o).
.SECONDEXPANSION:
$(BUILD)/tests/unit/services/%: tests/unit/services/%.c $(LIB) \
		$$(filter-out %/main.o,$$($$(firstword $$(subst /, ,$$*))_OBJ)) \
		$$($$(firstword $$(subst /, ,$$*))_OBJ_EXTRA)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Iservices/$(firstword $(subst /, ,$*)) $(ALL_LDFLAGS) $(TEST_LDFLAGS) -o $@ $< \
		$(filter-out %/main.o,$($(firstword $(subst /, ,$*))_OBJ)) \
		$($(firstword $(subst /, ,$*))_OBJ_EXTRA) $(LIB) $(LDLIBS) \
		$($(firstword $(subst /, ,$*))_LDLIBS) -lcriterion

# test_ob_phone checks every example number against python3-phonenumbers.
$(BUILD)/gen/phone_examples.h: tests/unit/common/domain/gen_phone_examples.py
	@mkdir -p $(dir $@)
	/usr/bin/python3 $< $@

$(BUILD)/tests/unit/common/domain/test_ob_phone: $(BUILD)/gen/phone_examples.h

$(BUILD)/tests/unit/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $(TEST_LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) -lcriterion

$(BUILD)/tests/integration/%: $(BUILD)/obj/tests/integration/%.o $(HARNESS_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

tests-build: $(BINS) $(UNIT_BINS) $(INTEG_BINS) $(DETECT_EVAL) $(CALLEE)

# The test callee (tests/callee, docs/testing-callee.md): the far end of the
# sip carrier's tests and benchmarks, a libre program like the carrier.
CALLEE_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/callee/*.c))
$(CALLEE_OBJ): ALL_CFLAGS += $(LIBRE_CFLAGS)
$(CALLEE): $(CALLEE_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) -lre
# test_callee runs it.
$(BUILD)/tests/integration/test_callee: | $(CALLEE)

# Callee-type detection against the generated corpus (tools/detect_corpus*.py,
# docs/detection.md): make eval-detect builds the full one (two splits, about
# 1,800 recordings) and reports the development split, then the frozen test
# split (checked against tests/detect/test-split.sha256) with the issue's
# targets, ob_detect beside Asterisk AMD()'s rules (tests/detect/amd_baseline.c);
# missed targets fail it only with EVAL_DETECT_STRICT=1. make test runs the
# small slice against a sanity set of targets (tools/test.sh).
DETECT_EVAL_SRC := tests/detect/eval_detect.c tests/detect/eval_report.c tests/detect/amd_baseline.c
$(DETECT_EVAL): $(DETECT_EVAL_SRC) tests/detect/eval_report.h tests/detect/amd_baseline.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/detect $(ALL_LDFLAGS) -o $@ $(DETECT_EVAL_SRC) $(LIB) $(LDLIBS)

# Its unit test links the baseline too.
$(BUILD)/tests/unit/tests/detect/test_amd_baseline: tests/unit/tests/detect/test_amd_baseline.c \
		tests/detect/amd_baseline.c tests/detect/amd_baseline.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/detect $(ALL_LDFLAGS) $(TEST_LDFLAGS) -o $@ $< \
		tests/detect/amd_baseline.c $(LIB) $(LDLIBS) -lcriterion

DETECT_CORPUS_PY := $(wildcard tools/detect_corpus*.py)
$(BUILD)/detect/%/manifest.tsv: $(DETECT_CORPUS_PY)
	/usr/bin/python3 tools/detect_corpus.py $(dir $@) $(if $(filter small,$*),--small)

.PHONY: eval-detect
eval-detect: deps $(DETECT_EVAL) $(BUILD)/detect/full/manifest.tsv
	@$(DETECT_EVAL) $(BUILD)/detect/full --split dev --results $(BUILD)/detect/full/results-dev.tsv \
		--json $(BUILD)/detect/full/results-dev.json
	@echo
	@$(DETECT_EVAL) $(BUILD)/detect/full --split test --test-sha256 tests/detect/test-split.sha256 \
		--results $(BUILD)/detect/full/results-test.tsv --json $(BUILD)/detect/full/results.json \
		$(if $(EVAL_DETECT_STRICT),--strict)

# Fuzz targets link the ingest's modules (all but main.o), like its unit tests.
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(BUILD)/%,$(FUZZ_SRC))
FUZZ_LINK  := $(filter-out %/main.o,$(ingest_OBJ)) $(ingest_OBJ_EXTRA)
$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LINK) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Iservices/ingest -fsanitize=fuzzer -fsanitize-link-c++-runtime \
		$(ALL_LDFLAGS) -o $@ $< \
		$(FUZZ_LINK) $(LIB) $(LDLIBS)

unit-test: $(UNIT_BINS)
	@tools/run_unit.sh $(UNIT_BINS)

# Needs the local stack (make stack-up).
integration-test: $(BINS) $(INTEG_BINS)
	@BUILD=$(BUILD) tools/run_integration.sh $(INTEG_BINS)

# The web console in headless chromium; needs the local stack (make stack-up).
browser-test: $(BINS)
	@tools/run_browser.sh $(BUILD)

stack-up:
	@deploy/local/stack.sh up

stack-down:
	@deploy/local/stack.sh down

# The everyday check, a few minutes (docs/testing.md): the normal build, the
# unit tests, then the integration tests against the local stack, which is
# brought up if it is down and down again after (make stack-up keeps it up
# between runs). The integration binaries run two at a time (each isolates
# itself by topic prefix and schema), the slowest first, each one's output
# printed when it ends; all but test_crash_retry: about two minutes alone,
# and its kill in the middle of an upload came too late when it ran beside
# another binary. It, the sanitizer build, fuzzing, the browser tests, the
# soak, the benchmarks and the deploy checks are left to make test. The large
# upload has 200,000 rows, as in make test's sanitizer run (its client gives
# a 1,000,000-row upload 30 s, which a busy machine does not always meet).
# test_sip reads the small detection corpus.
.PHONY: check
check: CHECK_INTEG = $(filter-out %/test_crash_retry,$(INTEG_BINS))
check: CHECK_FIRST = $(filter %/test_sip %/test_failover %/test_windows %/test_security,$(INTEG_BINS))
check: deps
	@$(MAKE) --no-print-directory -j$(NPROC) $(BINS) $(UNIT_BINS) $(CHECK_INTEG) \
		$(BUILD)/detect/small/manifest.tsv
	@tools/run_unit.sh $(UNIT_BINS)
	@started=0; deploy/local/stack.sh status >/dev/null 2>&1 || \
		{ deploy/local/stack.sh up && started=1; } || exit 1; \
	printf '%s\n' $(CHECK_FIRST) $(filter-out $(CHECK_FIRST),$(CHECK_INTEG)) | xargs -P 2 -I{} sh -c \
		'out=$$(BUILD=$(BUILD) OB_TEST_UPLOAD_ROWS=$${OB_TEST_UPLOAD_ROWS:-200000} \
		tools/run_integration.sh {} 2>&1); rc=$$?; printf "%s\n" "$$out"; exit $$rc'; \
	rc=$$?; [ $$started = 0 ] || deploy/local/stack.sh down || rc=1; exit $$rc

# The two commands of the quick start.
run: deps
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@deploy/local/run.sh

# Every test runs twice: as built, and under AddressSanitizer and
# UndefinedBehaviorSanitizer (build/san). First, that deps.sh installs all
# that the builds and tests use (tools/deps_check.py, and its self-test).
test: deps
	@tools/deps_check.py --self-test
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory -j$(NPROC) tests-build bench-tools
	@$(MAKE) --no-print-directory -j$(NPROC) tests-build SANITIZE=address,undefined
	@$(MAKE) --no-print-directory -j$(NPROC) fuzz-build FUZZ=1
	@tools/test.sh build build/san

# Whether a fresh machine gets, from deploy/local/deps.sh, every Debian package
# the builds and tests use (docs/development.md).
.PHONY: check-deps
check-deps:
	@tools/deps_check.py

# libFuzzer (clang) on the parsers of hostile input: each target in
# tests/fuzz for FUZZ_SECONDS (default 600) from its checked-in corpus in
# tests/fuzz/corpus/<name>; crashes land in build/fuzz/artifacts. fuzz-quick
# replays the corpora and fuzzes 10 s per target, as `make test` does.
FUZZ_SECONDS ?= 600
fuzz-build:
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-targets

.PHONY: fuzz-targets
fuzz-targets: $(FUZZ_BINS)

fuzz: deps fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tools/fuzz.sh build/fuzz

fuzz-quick: deps fuzz-build
	@FUZZ_SECONDS=5 tools/fuzz.sh build/fuzz

# `make bench` (issue 8): every benchmark on its own stack, each stage beside
# the limit of what it is built on (build/bench/*, measured in the same run),
# one table and the growth runs; rewrites BENCHMARKS.md. bench-quick runs the
# same harness with small sizes on one stack (< 2 minutes, BENCHMARKS.md
# untouched); make test runs it. The single benchmarks below stay available.
.PHONY: bench bench-quick bench-ingest
bench: deps all bench-tools $(CALLEE)
	@bench/all.sh

bench-quick: deps all bench-tools $(CALLEE)
	@bench/all.sh --quick

# Ingest benchmarks (issue 3) alone: bench/run.sh [--quick].
bench-ingest: deps all bench-tools
	@bench/run.sh

# Scheduler benchmark (releases/s at 1,000,000 pending, queue-to-dialing
# latency) on its own stack; bench/scheduler.sh --quick for a smoke run.
.PHONY: bench-scheduler
bench-scheduler: deps all bench-tools
	@bench/scheduler.sh

# Dialer benchmark (sim calls in flight on one worker, events/s to Postgres
# and Kafka, webhooks/s) on its own stack; bench/dialer.sh --quick for a smoke run.
.PHONY: bench-dialer
bench-dialer: deps all bench-tools
	@bench/dialer.sh

# Media benchmark (issue 21): 1,000 calls with documents held by one sip
# dialer against the test callee, RTP both ways; the dialer's cores, our
# RTP's pacing, the first audio after the verdict. bench/media.sh --quick
# for a smoke run.
.PHONY: bench-media
bench-media: deps all $(CALLEE)
	@bench/media.sh

# The fault-injection soak (issues 9 and 19) on its own stack, as hard as
# production: SOAK_SECONDS (1800) of load at SOAK_RATE (40) operations/s
# (calls, batches, 100,000-row uploads, Plum routes, cancels at the moment of
# dialing, retries with the same Idempotency-Key) while ingests (in the middle
# of big uploads), schedulers, dialers, the broker, PostgreSQL and a webhook
# receiver are killed and restarted every ~15 s, then every invariant checked
# (tests/soak/soak.py, docs/reliability.md); make test runs a short one.
.PHONY: soak
soak: deps all
	@nice /usr/bin/python3 tests/soak/soak.py

format:
	clang-format -i $(FORMAT_SRC)

format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRC) && echo "format: ok"

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
