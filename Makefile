# sentry-lua. `make` builds the C core in place (lua/sentry/core.so) for $(LUA).
LUA ?= lua5.4
LUAS ?= lua5.1 lua5.3 lua5.4 luajit
CC ?= cc

# pkg-config names Debian uses for each interpreter's headers
PKG_lua5.1 = lua5.1
PKG_lua5.3 = lua5.3
PKG_lua5.4 = lua5.4
PKG_luajit = luajit
LUA_PKG = $(PKG_$(LUA))
LUA_CFLAGS ?= $(shell pkg-config --cflags $(LUA_PKG))
CURL_CFLAGS ?= $(shell pkg-config --cflags libcurl)
CURL_LIBS ?= $(shell pkg-config --libs libcurl)

# Warnings are errors only in development and CI (DEV=1, which the test, lint
# and checking targets set for everything they build): a user's `make` or
# `luarocks make` must survive the new warnings of a newer compiler.
WARNINGS = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes $(if $(filter 1,$(DEV)),-Werror)
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=c99 -fPIC -fvisibility=hidden $(WARNINGS) $(CFLAGS) $(LUA_CFLAGS) $(CURL_CFLAGS)
# Never link liblua: the host interpreter provides the Lua API.
LDFLAGS_SHARED = -shared

# The release: lua/sentry/init.lua's VERSION; its rockspec is made from the scm one.
VERSION = $(shell sed -n 's/^ *VERSION = "\([^"]*\)",$$/\1/p' lua/sentry/init.lua)
SCM_ROCKSPEC = sentry-api-scm-1.rockspec

SOURCES = $(wildcard src/*.c)
SHELL_SCRIPTS = $(filter-out %.lua %.conf,$(wildcard spec/hosts/*)) spec/support/fake-sentry \
  $(wildcard tools/run-tests tools/tap.sh tools/install-deps tools/demo tools/asan bench/run fuzz/run)
HEADERS = $(wildcard src/*.h)
BUILD ?= build/$(LUA)
CORE = $(BUILD)/sentry/core.so

.PHONY: all build test test-all demo deps lint clean valgrind asan endpoints operations docs bench fuzz soak rockspec
DEV_TARGETS = test test-all test-neovim test-openresty test-luarocks lint valgrind asan bench fuzz soak
$(DEV_TARGETS): export DEV = 1

# Always copied: the in-place core must match $(LUA), whichever was built last.
all: $(CORE)
	cp $(CORE) lua/sentry/core.so

build: $(CORE)

$(CORE): $(SOURCES) $(HEADERS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_SHARED) -o $@ $(SOURCES) $(CURL_LIBS)

# Debian packages for building, testing and the demo.
deps:
	tools/install-deps

test: $(CORE)
	tools/run-tests $(LUA)

test-all:
	SENTRY_HOST_SUITES=1 tools/run-tests $(LUAS)

# One host suite each (test-all runs them all): each builds what it needs and
# starts its own fake Sentry unless SENTRY_FAKE_URL names a running one.
.PHONY: test-neovim test-openresty test-luarocks
test-neovim:
	spec/hosts/neovim

test-openresty:
	spec/hosts/openresty

test-luarocks:
	spec/hosts/luarocks

demo: build
	tools/demo

# Lua (luacheck); the C core once for each Lua's headers, in the one
# configuration the compiler sees (cppcheck); the host suites' shell
# (shellcheck); the doc comments (make docs).
lint: docs
	luacheck lua spec tools examples bench
	$(foreach lua,$(LUAS),cppcheck --quiet --error-exitcode=1 --std=c99 \
	  --enable=warning,portability,performance --max-configs=1 \
	  --suppress=missingIncludeSystem --suppress=toomanyconfigs \
	  $(shell pkg-config --cflags $(PKG_$(lua))) $(CURL_CFLAGS) src &&) true
	shellcheck -x $(SHELL_SCRIPTS)
	$(MAKE) -s operations-fresh

# The operations' data module and reference, from the vendored OpenAPI schema
# and the endpoint catalogue (tools/gen_operations.lua).
OPERATION_FILES = lua/sentry/operation_data.lua:data OPERATIONS.md:reference
operations:
	$(foreach file,$(OPERATION_FILES),$(LUA) tools/gen_operations.lua $(lastword $(subst :, ,$(file))) \
	  > $(firstword $(subst :, ,$(file))).new && mv $(firstword $(subst :, ,$(file))).new $(firstword $(subst :, ,$(file))) &&) true

# Fails when a generated operations file differs from what the generator writes now.
.PHONY: operations-fresh
operations-fresh:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	for file in $(OPERATION_FILES); do \
	  $(LUA) tools/gen_operations.lua "$${file#*:}" > "$$tmp/out" || exit 1; \
	  cmp -s "$$tmp/out" "$${file%%:*}" || { echo "$${file%%:*} is stale: run make operations" >&2; exit 1; }; \
	done

endpoints:
	$(LUA) tools/gen_endpoints.lua tools/endpoints.tsv > lua/sentry/endpoint_data.lua.new
	mv lua/sentry/endpoint_data.lua.new lua/sentry/endpoint_data.lua

valgrind: $(CORE)
	SENTRY_TEST_WRAPPER="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --suppressions=tools/valgrind.supp" \
	  tools/run-tests $(LUA)

asan:
	tools/asan

fuzz:
	fuzz/run $(FUZZ_SECONDS)

soak: $(CORE)
	bench/soak

bench:
	bench/run

# The API reference from the doc comments (the public modules config.ld
# names, markdown rendered by lua-discount), into doc/; a warning fails.
docs:
	rm -rf doc
	ldoc --fatalwarnings .
	cp OPERATIONS.md doc/operations.md

# After changing VERSION: sentry-api-$(VERSION)-1.rockspec for the tag v$(VERSION)
# (make test-luarocks checks that it matches the scm rockspec).
rockspec:
	rm -f $(filter-out $(SCM_ROCKSPEC),$(wildcard sentry-api-*.rockspec))
	luarocks new_version $(SCM_ROCKSPEC) $(VERSION) --tag=v$(VERSION)

clean:
	rm -rf build lua/sentry/core.so doc
