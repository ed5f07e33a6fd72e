#!/bin/sh
# `make run`: starts facteur on etc/dev.conf, after creating the development
# domain and users when they do not exist yet (DESIGN.md, "Contract").
set -e
cd "$(dirname "$0")/.."
BIN=./build/facteur
CONF=etc/dev.conf
if ! $BIN -c $CONF domain list | grep -qx example.test; then
	$BIN -c $CONF domain add example.test
fi
for u in alice bob; do
	if ! $BIN -c $CONF user list example.test | grep -qx "$u@example.test"; then
		echo "$u-pass-1" | $BIN -c $CONF user add "$u@example.test" >/dev/null
		echo "run: created user $u@example.test with password $u-pass-1"
	fi
done
echo "run: SMTP 127.0.0.1:2525, submission 2587 (STARTTLS), submissions 2465 (TLS), IMAP 2143 (STARTTLS), IMAPS 2993, POP3 2110 (STLS), POP3S 2995; data in ./var"
exec $BIN -c $CONF serve
