# outbound: one non-recursive Makefile for the services, the shared library,
# the tests and the local stack. `make run` and `make test` are the two
# commands a newcomer needs; both install what is missing first.

CC       ?= cc
PKGS     := rdkafka libpq libcjson libmicrohttpd libcrypto libcurl icu-i18n
BUILD    := build
ifneq ($(SANITIZE),)
BUILD    := build/san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

WARN     := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
CXXWARN  := -Wall -Wextra
ifneq ($(CI),)
WARN     += -Werror
CXXWARN  += -Werror
endif
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS   ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(CFLAGS) $(WARN) $(SANFLAGS) -D_GNU_SOURCE -MMD -MP \
              -Icommon -Iproto -I$(BUILD)/gen $(PKG_CFLAGS)
# common/*.cc is the libphonenumber boundary, the only C++ (compiled with $(CXX)).
CXXFLAGS ?= -O2 -g
ALL_CXXFLAGS := -std=c++17 $(CXXFLAGS) $(CXXWARN) $(SANFLAGS) -D_GNU_SOURCE -MMD -MP \
                -Icommon -Iproto -I$(BUILD)/gen $(PKG_CFLAGS)
LDLIBS   := $(PKG_LIBS) -lphonenumber -lstdc++ -lpthread -lm -lcsv
ALL_LDFLAGS := $(LDFLAGS) $(SANFLAGS)
# Criterion re-executes the test binary for each test; parameter tables that
# point at string literals stay valid only in a position-dependent binary.
TEST_LDFLAGS := -no-pie

COMMON_SRC := $(wildcard common/*.c) $(wildcard proto/*.c)
COMMON_CXX_SRC := $(wildcard common/*.cc)
MIGRATIONS := $(sort $(wildcard common/migrations/*.sql))
GEN_SRC    := $(BUILD)/gen/ob_migrations.c
LIB_OBJ    := $(patsubst %.c,$(BUILD)/obj/%.o,$(COMMON_SRC)) \
              $(patsubst %.cc,$(BUILD)/obj/%.o,$(COMMON_CXX_SRC)) $(BUILD)/obj/gen/ob_migrations.o \
              $(BUILD)/obj/gen/ob_phone_data.o $(BUILD)/obj/gen/ob_phone_tz.o
LIB        := $(BUILD)/libob.a

SERVICES   := ingest scheduler dialer
BINS       := $(addprefix $(BUILD)/bin/outbound-,$(SERVICES))
# The command-line client (services/outboundctl), built like a service.
BINS       += $(BUILD)/bin/outboundctl

UNIT_SRC   := $(shell find tests/unit -name 'test_*.c' 2>/dev/null)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))
INTEG_SRC  := $(wildcard tests/integration/test_*.c)
INTEG_BINS := $(patsubst tests/integration/%.c,$(BUILD)/tests/integration/%,$(INTEG_SRC))
HARNESS_OBJ := $(BUILD)/obj/tests/integration/harness.o

FORMAT_SRC := $(shell git ls-files '*.c' '*.h' '*.cc' 2>/dev/null)

# Objects built on the way to a test binary are kept, not treated as intermediate.
.SECONDARY:

.PHONY: all deps run test unit-test integration-test browser-test stack-up stack-down format format-check \
        clean tests-build

all: $(BINS)

deps:
	@deploy/local/deps.sh

$(GEN_SRC): tools/embed_migrations.sh $(MIGRATIONS)
	@mkdir -p $(dir $@)
	tools/embed_migrations.sh $@ $(MIGRATIONS)

$(BUILD)/obj/gen/ob_migrations.o: $(GEN_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Metadata facts libphonenumber's C++ API keeps private, from python3-phonenumbers.
$(BUILD)/gen/ob_phone_data.c: tools/gen_phone_data.py tools/phone_gen.py
	@mkdir -p $(dir $@)
	/usr/bin/python3 tools/gen_phone_data.py $@

$(BUILD)/obj/gen/ob_phone_data.o: $(BUILD)/gen/ob_phone_data.c common/ob_phone_data.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Phone number prefix to IANA time zones, also from python3-phonenumbers.
$(BUILD)/gen/ob_phone_tz.c: tools/gen_phone_tz.py tools/phone_gen.py
	@mkdir -p $(dir $@)
	/usr/bin/python3 tools/gen_phone_tz.py $@

$(BUILD)/obj/gen/ob_phone_tz.o: $(BUILD)/gen/ob_phone_tz.c common/ob_phone_tz.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/%.o: %.cc
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
	$$(CC) $(ALL_LDFLAGS) -o $$@ $$^ $(LDLIBS)
endef
ingest_OBJ_EXTRA := $(BUILD)/obj/gen/ingest_openapi.o $(BUILD)/obj/gen/ingest_console_files.o
$(foreach s,$(SERVICES),$(eval $(call service_rule,$(s))))

# outboundctl: its folder's objects with the shared library, like a service.
outboundctl_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard services/outboundctl/*.c))
$(BUILD)/bin/outboundctl: $(outboundctl_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests of a service link that service's modules (all but main.o).
.SECONDEXPANSION:
$(BUILD)/tests/unit/services/%: tests/unit/services/%.c $(LIB) \
		$$(filter-out %/main.o,$$($$(firstword $$(subst /, ,$$*))_OBJ))
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Iservices/$(firstword $(subst /, ,$*)) $(ALL_LDFLAGS) $(TEST_LDFLAGS) -o $@ $< \
		$(filter-out %/main.o,$($(firstword $(subst /, ,$*))_OBJ)) $(LIB) $(LDLIBS) -lcriterion

# test_ob_phone checks every example number against python3-phonenumbers.
$(BUILD)/gen/phone_examples.h: tests/unit/common/gen_phone_examples.py
	@mkdir -p $(dir $@)
	/usr/bin/python3 $< $@

$(BUILD)/tests/unit/common/test_ob_phone: $(BUILD)/gen/phone_examples.h

$(BUILD)/tests/unit/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $(TEST_LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) -lcriterion

$(BUILD)/tests/integration/%: $(BUILD)/obj/tests/integration/%.o $(HARNESS_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

tests-build: $(BINS) $(UNIT_BINS) $(INTEG_BINS)

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

# The two commands of the quick start.
run: deps
	@$(MAKE) --no-print-directory all
	@deploy/local/run.sh

# Every test runs twice: as built, and under AddressSanitizer and
# UndefinedBehaviorSanitizer (build/san).
test: deps
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory tests-build
	@$(MAKE) --no-print-directory tests-build SANITIZE=address,undefined
	@tools/test.sh build build/san

# Ingest benchmarks (issue 3) on a stack of their own; results in BENCHMARKS.md.
# bench-quick runs the same harness with small sizes (a smoke run, < 60 s).
.PHONY: bench bench-quick
bench: deps all
	@bench/run.sh

bench-quick: deps all
	@bench/run.sh --quick

# Scheduler benchmark (releases/s at 1,000,000 pending, queue-to-dialing
# latency) on its own stack; bench/scheduler.sh --quick for a smoke run.
.PHONY: bench-scheduler
bench-scheduler: deps all
	@bench/scheduler.sh

# Dialer benchmark (sim calls in flight on one worker, events/s to Postgres
# and Kafka, webhooks/s) on its own stack; bench/dialer.sh --quick for a smoke run.
.PHONY: bench-dialer
bench-dialer: deps all
	@bench/dialer.sh

# The fault-injection soak (issue 9) on its own stack: SOAK_SECONDS (1800) of
# load while services, the broker, PostgreSQL and a webhook receiver are
# killed and restarted, then every invariant checked; make test runs a short one.
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
