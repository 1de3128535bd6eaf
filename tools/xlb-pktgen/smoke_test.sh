#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Smoke test of the real xlb-pktgen CLI (ctest pktgen_smoke): a namespace pair made here for the
# run (unique names, removed on exit also on failure), small bounded runs, the refusals.
#   smoke_test.sh PATH/TO/xlb-pktgen
set -eu
BIN=$1
A=xlbpg$$a
B=xlbpg$$b
cleanup() {
	ip netns del "$A" 2>/dev/null || true
	ip netns del "$B" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "pktgen_smoke: $*" >&2
	exit 1
}

# Exit status of the command, without set -e stopping the script.
status() {
	rc=0
	"$@" >/dev/null 2>&1 || rc=$?
	echo "$rc"
}

# field JSON NAME: one field of a JSON object.
field() {
	python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2"
}

ip netns add "$A"
ip netns add "$B"
ip -n "$A" link add g0 mtu 1600 numtxqueues 2 numrxqueues 2 type veth \
	peer name l0 mtu 1600 numtxqueues 2 numrxqueues 2 netns "$B"
# No IPv6 addresses: the stacks send nothing of their own that the sink would count.
ip -n "$A" link set g0 addrgenmode none
ip -n "$B" link set l0 addrgenmode none
ip -n "$A" link set g0 up
ip -n "$B" link set l0 up

# Refusals and bad arguments: exit status 2.
[ "$(status "$BIN" --netns /proc/self/ns/net --dev lo --count 1)" = 2 ] ||
	fail "the initial namespace was not refused"
[ "$(status "$BIN" --netns "$A" --dev g0 --peer /proc/self/ns/net:lo --count 1)" = 2 ] ||
	fail "an initial peer namespace was not refused"
[ "$(status "$BIN" --netns "$A" --dev g0 --dst 127.0.0.1 --count 1)" = 2 ] ||
	fail "an address outside the test ranges was not refused"
[ "$(status "$BIN" --netns "$A" --dev g0 --family 6 --proto tcp-ack --size 70 --count 1)" = 2 ] ||
	fail "a frame smaller than its headers was not refused"
[ "$(status "$BIN" --netns "$A" --dev nosuch0 --count 1)" = 2 ] || fail "a missing device was not refused"
[ "$(status "$BIN" --netns "$A" --dev g0 --count 0)" = 2 ] || fail "--count 0 was not refused"
[ "$(status "$BIN" --netns "$A" --dev g0 --bogus)" = 2 ] || fail "an unknown option was not refused"
"$BIN" --help | grep -q "initial network namespace" || fail "--help does not state the refusal"

# Every frame comes back from the reflector on the peer.
check_run() {
	out=$("$BIN" --netns "$A" --dev g0 --peer "$B:l0" --duration-ms 10000 --json "$@")
	sent=$(field "$out" sent)
	returned=$(field "$out" returned)
	[ "$sent" = "$COUNT" ] || fail "sent $sent of $COUNT ($*)"
	[ "$returned" = "$COUNT" ] || fail "$returned of $COUNT frames came back ($*)"
	echo "ok: $* -> $(field "$out" sent_mpps) Mpps"
}
COUNT=20000
check_run --count $COUNT --proto udp
check_run --count $COUNT --family 6 --proto tcp-syn --flows 100 --new-connections --size 1514
if [ "$(nproc)" -ge 2 ]; then
	check_run --count $COUNT --family 4 --proto tcp-ack --flows 10000 --threads 2
fi

# Without a program on the peer nothing is delivered, and nothing comes back.
out=$("$BIN" --netns "$A" --dev g0 --count 1000 --json)
[ "$(field "$out" sent)" = 1000 ] || fail "sent without a peer program: $out"
[ "$(field "$out" returned)" = 0 ] || fail "frames came back without a peer program: $out"
echo "pktgen_smoke: ok"
