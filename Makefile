# tpwatch: the two commands a newcomer needs are `make demo` and `make test`.
# Both install what they need on a fresh Debian machine with Go.

export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
BIN     := bin/tpwatch
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REV     ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BRANCH  ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
# The build date `tpwatch version` prints; SOURCE_DATE_EPOCH (seconds) fixes
# it, for builds that must come out the same byte for byte.
BUILD_DATE ?= $(shell if [ -n "$$SOURCE_DATE_EPOCH" ]; then date -u -d "@$$SOURCE_DATE_EPOCH" +%Y%m%d-%H:%M:%S; else date -u +%Y%m%d-%H:%M:%S; fi)
LDFLAGS := -X main.version=$(VERSION) -X main.revision=$(REV) -X main.branch=$(BRANCH) -X main.buildDate=$(BUILD_DATE)
# Debian packages the tests use; installed when missing (CI runs as root).
APT_PACKAGES := prometheus libpcap-dev nftables iproute2 tcpreplay tcpdump tshark chromium tidy \
	samba samba-ad-provision samba-dsdb-modules samba-vfs-modules smbclient

.PHONY: all build test test-windows dist demo bench bench-go lint fuzz pcaps deps clean

all: build

# Live capture links libpcap through cgo: the headers come from libpcap-dev,
# installed here when missing and run as root. Without them tpwatch is built
# without cgo: replay works, `tpwatch run` says live capture is unavailable.
build:
	@if [ ! -e /usr/include/pcap/pcap.h ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing libpcap-dev (live capture)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libpcap-dev) >/dev/null; \
	fi
	@if [ -e /usr/include/pcap/pcap.h ]; then \
	  $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tpwatch; \
	else \
	  echo "libpcap-dev missing: building without live capture (apt-get install libpcap-dev for tpwatch run)"; \
	  CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tpwatch; \
	fi

## demo: replay the built-in example site and print the report
demo: build
	@echo '$$ tpwatch replay --config pcaps/demo-site.yaml pcaps/demo-site.pcapng'
	@./$(BIN) replay --format table --config pcaps/demo-site.yaml pcaps/demo-site.pcapng; \
	  st=$$?; echo "(exit status $$st: 0 all allowed, 1 something blocked or unexpected, 2 error)"; \
	  [ $$st -le 1 ]

# Packages that run goroutines of their own, tested again under the race
# detector.
RACE_PACKAGES := ./classifier ./pipeline ./policy ./metrics ./replay ./daemon
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2

## test: every test, as CI runs it
test: deps lint
	$(GO) test -count=1 -timeout 30m ./...
	$(GO) test -race -count=1 -timeout 15m $(RACE_PACKAGES)
	GOOS=windows CGO_ENABLED=0 $(GO) build ./...
	GOOS=freebsd CGO_ENABLED=0 $(GO) build ./...  # the Unix files that are not Linux
	$(MAKE) --no-print-directory test-windows

## test-windows: the Windows build under Wine (installs wine64 and mingw-w64
## as root): --help, interfaces and policy without Npcap, replay of pcaps/
## byte for byte against the Linux build, a missing or incomplete wpcap.dll,
## and as root live capture and the service (see scripts/wine-test.sh)
test-windows:
	scripts/wine-test.sh

## dist: release archives in dist/ for linux/amd64, linux/arm64 and
## windows/amd64, with checksums (see scripts/dist.sh)
dist:
	VERSION='$(VERSION)' REV='$(REV)' BRANCH='$(BRANCH)' BUILD_DATE='$(BUILD_DATE)' GO='$(GO)' scripts/dist.sh

## lint: gofmt, go vet and staticcheck, for Linux and for Windows
## (staticcheck is fetched through the Go module proxy at the version named
## above, into bin/, since go run would build it for the GOOS it checks)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on: $$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./...
	GOBIN=$(CURDIR)/bin $(GO) install $(STATICCHECK)
	bin/staticcheck ./...
	GOOS=windows bin/staticcheck ./...

## deps: Debian packages the tests need (promtool and prometheus for the metric,
## rule and dashboard checks; libpcap-dev for live capture; ip, nft and
## tcpreplay for the end-to-end test in e2e/; tshark, the oracle of dissect's
## corpus sweep; chromium and tidy to render and check the HTML report and
## the status page; samba, the Active Directory schema, directory and VFS
## modules it recommends (not installed with --no-install-recommends) and
## smbclient's rpcclient for e2e's domain controller behind an endpoint
## mapper, TestRPCEndpointMapper)
deps:
	@missing=""; command -v promtool >/dev/null || missing="$$missing prometheus"; \
	  [ -e /usr/include/pcap/pcap.h ] || missing="$$missing libpcap-dev"; \
	  command -v nft >/dev/null || missing="$$missing nftables"; \
	  command -v ip >/dev/null || missing="$$missing iproute2"; \
	  command -v tcpreplay >/dev/null || missing="$$missing tcpreplay"; \
	  command -v tcpdump >/dev/null || missing="$$missing tcpdump"; \
	  command -v tshark >/dev/null || missing="$$missing tshark"; \
	  command -v chromium >/dev/null || missing="$$missing chromium"; \
	  command -v tidy >/dev/null || missing="$$missing tidy"; \
	  command -v samba >/dev/null || missing="$$missing samba"; \
	  [ -d /usr/share/samba/setup/ad-schema ] || missing="$$missing samba-ad-provision"; \
	  ls /usr/lib/*/samba/ldb/samba_dsdb.so >/dev/null 2>&1 || missing="$$missing samba-dsdb-modules"; \
	  ls /usr/lib/*/samba/vfs/acl_xattr.so >/dev/null 2>&1 || missing="$$missing samba-vfs-modules"; \
	  command -v rpcclient >/dev/null || missing="$$missing smbclient"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      echo "installing:$$missing"; \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	    else echo "missing:$$missing (run as root or install them; tests that need them skip outside CI)"; fi; \
	  fi

## bench: Go benchmarks of every stage, then scripts/bench.sh: tpwatch against tcpdump, softflowd, nDPI
## and tshark on the issue's 10M-packet capture, and against tcpdump on a stress one (STRESS=0 skips it)
bench: bench-go
	scripts/bench.sh

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./capture ./classifier ./policy ./report ./pipeline ./dissect

## fuzz: run every fuzz target for FUZZTIME each
FUZZTIME ?= 60s
fuzz:
	@for pkg in ./capture ./policy ./dissect; do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep ^Fuzz); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## pcaps: regenerate the committed test captures and their expected verdicts
pcaps:
	$(GO) run ./pcaps/cmd/gencaps -out pcaps

clean:
	rm -rf bin dist
