# Anvil - top-level build. GNU make; no generated build system.
#
#   make            build every binary into bin/
#   make run        deps, build, bootstrap, start everything (foreground)
#   make test       deps, build, unit + integration tests, "N passed, N failed"
#   make asan       the same tests under AddressSanitizer + UBSan
#   make fuzz       libFuzzer targets for FUZZ_SECONDS each
#   make bench      benchmarks (print numbers, assert nothing)
#   make install    PREFIX=/usr/local DESTDIR=... (binaries, schema, units,
#                   man pages, completion, default configs under /etc/anvil)
#   make deb        the Debian package (dpkg-buildpackage -us -uc -b) in build/deb/
#   make format / make lint / make clean

BUILD   ?= build
BINDIR  ?= bin
CC      ?= cc
OPT     ?= -O2
SAN     ?=
PKGS    := openssl libmicrohttpd jansson libcares libevent libevent_pthreads libpq libcbor libcurl

CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror -Wno-format-truncation
CFLAGS_ALL = $(CSTD) $(OPT) -g $(WARN) -I. $(PKG_CFLAGS) $(SAN) $(EXTRA_CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lpthread -lm $(SAN)

LIBDIRS := core jose rpc sa ca ra va wfe
LIBS    := $(foreach d,$(LIBDIRS),$(if $(wildcard $(d)/*.c),$(BUILD)/lib$(d).a))
# Link order: services first, shared libraries last.
LINKLIBS = $(filter-out $(BUILD)/libcore.a $(BUILD)/librpc.a $(BUILD)/libjose.a,$(LIBS)) \
           $(filter $(BUILD)/libjose.a,$(LIBS)) $(filter $(BUILD)/librpc.a,$(LIBS)) \
           $(filter $(BUILD)/libcore.a,$(LIBS))

CMDS    := $(notdir $(patsubst %/,%,$(dir $(wildcard cmd/*/main.c))))
BINS    := $(addprefix $(BINDIR)/,$(CMDS))
UNITSRC := $(wildcard test/unit/test_*.c)
UNITS   := $(patsubst test/unit/%.c,$(BUILD)/test/%,$(UNITSRC))

ifeq ($(filter clean format lint,$(MAKECMDGOALS)),)
-include $(BUILD)/config.mk
endif

.PHONY: all build deps run run-testmode cluster test-cluster test unit integration asan fuzz bench clean format lint install deb
all: build
build: $(BINS) $(UNITS)

# Dependencies: installed by scripts/install-deps.sh when missing (as root),
# otherwise it prints the one command to run. The result is cached here
# (again when PKGS changes).
$(BUILD)/config.mk: scripts/install-deps.sh Makefile
	@mkdir -p $(BUILD)
	@scripts/install-deps.sh --ensure
	@{ echo "PKG_CFLAGS := $$(pkg-config --cflags $(PKGS))"; \
	   echo "PKG_LIBS := $$(pkg-config --libs $(PKGS))"; \
	   echo "PKG_CFLAGS += $$(pkg-config --cflags p11-kit-1)"; } > $@.tmp && mv $@.tmp $@

deps:
	@scripts/install-deps.sh --ensure

$(BUILD)/obj/%.o: %.c $(BUILD)/config.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

define LIB_template
$(BUILD)/lib$(1).a: $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard $(1)/*.c))
	@rm -f $$@
	ar rcs $$@ $$^
endef
$(foreach d,$(LIBDIRS),$(eval $(call LIB_template,$(d))))

# Which of our libraries a program links: the first line of its main source
# may say "/* LIBS: sa rpc core */" (in link order); default is all of them.
# A program then builds even while an unrelated module is half-written.
libs_of = $(if $(strip $(1)),$(foreach l,$(1),$(BUILD)/lib$(l).a),$(LINKLIBS))
decl_libs = $(shell sed -n '1s@.*LIBS:\([a-z ]*\).*@\1@p' $(1) 2>/dev/null)

define CMD_template
$(BINDIR)/$(1): $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard cmd/$(1)/*.c)) $(call libs_of,$(call decl_libs,cmd/$(1)/main.c))
	@mkdir -p $(BINDIR)
	$(CC) -o $$@ $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard cmd/$(1)/*.c)) -Wl,--start-group $(call libs_of,$(call decl_libs,cmd/$(1)/main.c)) -Wl,--end-group $$(LDLIBS_ALL)
endef
$(foreach c,$(CMDS),$(eval $(call CMD_template,$(c))))

define UNIT_template
$(BUILD)/test/$(1): $(BUILD)/obj/test/unit/$(1).o $(call libs_of,$(call decl_libs,test/unit/$(1).c))
	@mkdir -p $$(dir $$@)
	$(CC) -o $$@ $$< -Wl,--start-group $(call libs_of,$(call decl_libs,test/unit/$(1).c)) -Wl,--end-group $$(LDLIBS_ALL)
endef
$(foreach u,$(patsubst test/unit/%.c,%,$(UNITSRC)),$(eval $(call UNIT_template,$(u))))

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# The two commands of README.md.
run: build
	@scripts/run.sh

run-testmode: build
	@scripts/run.sh --test-mode

# The highly available topology in network namespaces (root; docs/scaling.md).
cluster: build
	@BINDIR=$(BINDIR) scripts/cluster.sh run

test-cluster: build
	@BINDIR=$(BINDIR) /usr/bin/python3 test/cluster/test_cluster.py

test: build
	@BUILD=$(BUILD) BINDIR=$(BINDIR) scripts/run-tests.sh

unit: build
	@BUILD=$(BUILD) BINDIR=$(BINDIR) scripts/run-tests.sh --unit-only

integration: build
	@BUILD=$(BUILD) BINDIR=$(BINDIR) scripts/run-tests.sh --integration-only

asan:
	@$(MAKE) --no-print-directory BUILD=build-asan BINDIR=build-asan/bin OPT=-O1 \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" test

FUZZ_SECONDS ?= 60
fuzz:
	@scripts/fuzz.sh $(FUZZ_SECONDS)

bench: build
	@scripts/bench.sh

clean:
	rm -rf build build-asan build-fuzz bin

# Installation (docs/operations.md). The default config set is what
# `anvil-admin setup` writes for the placeholder host acme.invalid; the
# operator replaces it with `anvil-admin setup --host NAME`.
PREFIX      ?= /usr/local
DESTDIR     ?=
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/anvil
COMPLDIR    ?= $(PREFIX)/share/bash-completion/completions
INSTALL_BINS := anvil anvil-admin anvil-sa anvil-ca anvil-va anvil-ra anvil-wfe anvil-rpc
INSTALL_DOCS := README.md docs/operations.md docs/operations-ca.md docs/configuration.md \
	docs/security.md docs/rpc.md docs/rpc-methods.md docs/storage.md docs/policy.md

install: $(addprefix $(BINDIR)/,$(INSTALL_BINS))
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/anvil/schema \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR) $(DESTDIR)$(COMPLDIR)
	install -m 0755 $(addprefix $(BINDIR)/,$(INSTALL_BINS)) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 schema/*.sql $(DESTDIR)$(PREFIX)/share/anvil/schema/
	install -m 0755 scripts/anvil-backup $(DESTDIR)$(PREFIX)/share/anvil/
	for u in configs/systemd/*.service configs/systemd/*.target; do \
	    sed -e 's|/usr/local/bin/|$(PREFIX)/bin/|g' -e 's|/etc/anvil|$(SYSCONFDIR)/anvil|g' "$$u" \
	        > $(DESTDIR)$(UNITDIR)/$$(basename "$$u") && chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename "$$u"); done
	install -m 0644 configs/systemd/anvil.sysusers.conf $(DESTDIR)$(SYSUSERSDIR)/anvil.conf
	install -m 0644 configs/systemd/anvil.tmpfiles.conf $(DESTDIR)$(TMPFILESDIR)/anvil.conf
	install -m 0644 man/*.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 completion/anvil-admin.bash $(DESTDIR)$(COMPLDIR)/anvil-admin
	install -m 0644 $(INSTALL_DOCS) $(DESTDIR)$(DOCDIR)/
	$(BINDIR)/anvil-admin setup --host acme.invalid --root "$(DESTDIR)" --out $(SYSCONFDIR)/anvil \
	    --bin-dir $(PREFIX)/bin --schema-dir $(PREFIX)/share/anvil/schema --resolver 127.0.0.1:53 \
	    --unit-dir $(DESTDIR)$(UNITDIR) --force

# The package reuses this tree's build (debian/rules runs `make build`), so
# after `make` or `make test` it only links nothing and packs. dpkg-buildpackage
# writes into the parent directory; the results are moved to build/deb/.
deb: build
	dpkg-buildpackage -us -uc -b
	@mkdir -p $(BUILD)/deb
	@v=$$(dpkg-parsechangelog -S Version); a=$$(dpkg-architecture -qDEB_HOST_ARCH); \
	    for f in ../anvil_$${v}_$$a.deb ../anvil-dbgsym_$${v}_$$a.deb ../anvil_$${v}_$$a.buildinfo \
	        ../anvil_$${v}_$$a.changes; do [ -e "$$f" ] && mv -f "$$f" $(BUILD)/deb/; done; \
	    echo "deb: $(BUILD)/deb/anvil_$${v}_$$a.deb"

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

lint:
	@n=$$(for f in $$(git ls-files '*.c' '*.h'); do \
	    clang-format --dry-run "$$f" 2>&1 | grep -q warning && echo "$$f"; done | wc -l); \
	    echo "lint: $$n files differ from .clang-format (make format rewrites them)"
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	    --suppress=missingIncludeSystem --suppress=unknownMacro --inline-suppr -I. \
	    $$(git ls-files '*.c')
