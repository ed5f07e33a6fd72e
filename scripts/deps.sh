#!/bin/sh
# Installs the Debian packages facteur needs to build, run and test, when they
# are missing. As root it runs apt-get; otherwise it prints the one command to run.
set -e
PKGS="build-essential pkg-config libevent-dev libc-ares-dev libsqlite3-dev libssl-dev
libcrypt-dev libcmocka-dev openssl python3 python3-pytest python3-dnslib clang curl
sqlite3 isync fetchmail msmtp swaks offlineimap3"
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
	echo "deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q $missing >/dev/null
else
	echo "deps: missing packages; run as root:" >&2
	echo "  apt-get install -y$missing" >&2
	exit 1
fi
