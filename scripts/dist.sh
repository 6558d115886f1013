#!/usr/bin/env bash
# Release archives (make dist): dist/tpwatch-VERSION.OS-ARCH.tar.gz for
# linux/amd64 and linux/arm64, dist/tpwatch-VERSION.windows-amd64.zip, and
# dist/sha256sums.txt, in the layout of the Prometheus exporters' releases
# (one directory named like the archive, the binary and its docs in it).
#
# The Linux binaries link libpcap through cgo (live capture): linux/arm64
# is cross-compiled with Debian's gcc-aarch64-linux-gnu against
# libpcap0.8-dev:arm64, both installed when missing and run as root (which
# adds arm64 to dpkg's architectures). The Windows binary needs no cgo: it
# loads Npcap's wpcap.dll at run time. Npcap itself is not in the zip: its
# licence forbids redistribution; the Windows README says where to get it.
# Nothing of scripts/wine (test scaffolding) is ever packaged.
#
# VERSION, REV, BRANCH and BUILD_DATE come from the Makefile; set
# SOURCE_DATE_EPOCH for archives that come out the same byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
GO=${GO:-go}
: "${VERSION:?set by make dist}" "${REV:?}" "${BRANCH:?}" "${BUILD_DATE:?}"
ldflags="-s -w -X main.version=$VERSION -X main.revision=$REV -X main.branch=$BRANCH -X main.buildDate=$BUILD_DATE"
mtime=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

need_root_install() { # WHAT... : install Debian packages, or say how
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "installing: $*"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
	else
		echo "make dist needs the Debian packages: $* (run as root, or install them)" >&2
		exit 1
	fi
}
[ -e /usr/include/pcap/pcap.h ] || { apt-get update -qq 2>/dev/null || true; need_root_install libpcap-dev; }
command -v zip >/dev/null || need_root_install zip
if ! command -v aarch64-linux-gnu-gcc >/dev/null || [ ! -e /usr/lib/aarch64-linux-gnu/libpcap.so ]; then
	if [ "$(id -u)" = 0 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
		dpkg --add-architecture arm64
	fi
	[ "$(id -u)" = 0 ] && apt-get update -qq
	need_root_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross libpcap0.8-dev:arm64
fi

rm -rf dist
mkdir -p dist
for target in linux/amd64 linux/arm64 windows/amd64; do
	os=${target%/*}
	arch=${target#*/}
	name="tpwatch-$VERSION.$os-$arch"
	stage="dist/$name"
	mkdir -p "$stage"
	case $target in
	linux/amd64)
		CGO_ENABLED=1 GOOS=linux GOARCH=amd64 $GO build -trimpath -ldflags "$ldflags" -o "$stage/tpwatch" ./cmd/tpwatch ;;
	linux/arm64)
		CGO_ENABLED=1 GOOS=linux GOARCH=arm64 CC=aarch64-linux-gnu-gcc \
			$GO build -trimpath -ldflags "$ldflags" -o "$stage/tpwatch" ./cmd/tpwatch ;;
	windows/amd64)
		CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $GO build -trimpath -ldflags "$ldflags" -o "$stage/tpwatch.exe" ./cmd/tpwatch ;;
	esac
	mkdir -p "$stage/deploy"
	cp -r deploy/grafana deploy/prometheus "$stage/deploy/"
	cp deploy/site.example.yaml "$stage/site.example.yaml"
	if [ "$os" = windows ]; then
		cp deploy/windows/README.md "$stage/README.md"
		cp README.md "$stage/README-tpwatch.md"
	else
		cp README.md "$stage/README.md"
		cp -r deploy/systemd "$stage/deploy/"
	fi
	find "$stage" -exec touch -h -d "@$mtime" {} +
	if [ "$os" = windows ]; then
		(cd dist && find "$name" -print | LC_ALL=C sort | zip -X -q -@ "$name.zip")
	else
		tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" -C dist -cf - "$name" | gzip -n -9 >"dist/$name.tar.gz"
	fi
	rm -rf "$stage"
done
(cd dist && sha256sum tpwatch-* >sha256sums.txt)

# What was made, and a look inside: the right binary for each target, and
# no test scaffolding. (Extracted to files: file(1) reading a pipe stops
# early, which pipefail would count as a failure of the archiver.)
look=$(mktemp -d)
trap 'rm -rf "$look"' EXIT
for f in dist/*.tar.gz; do
	tar -xzf "$f" -C "$look" --wildcards '*/tpwatch'
	echo "$(basename "$f"): $(file -b "$look"/*/tpwatch)"
	rm -rf "${look:?}"/*
done
for f in dist/*.zip; do
	unzip -q "$f" -d "$look"
	echo "$(basename "$f"): $(file -b "$look"/*/tpwatch.exe)"
	if find "$look" -iname '*.dll' | grep -q .; then echo "FAIL: $f holds a DLL" >&2; exit 1; fi
	rm -rf "${look:?}"/*
done
cat dist/sha256sums.txt
