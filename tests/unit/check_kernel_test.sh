#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Tests tools/check-kernel: against this machine's kernel config, against configs crafted from
# the fragments (complete, one option missing, one built as a module where y is required), and
# with a config path that does not exist. Exit 0 when every case passes.
set -euo pipefail

root=$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/../.." && pwd)
check="$root/tools/check-kernel"
tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT

failures=0
out=""
rc=0
run() { # runs check-kernel with the arguments; sets out and rc
	rc=0
	out=$("$check" "$@" 2>&1) || rc=$?
}
fail() {
	echo "FAIL: $1"
	echo "--- exit $rc, output:"
	echo "$out"
	echo "---"
	failures=$((failures + 1))
}
expect_rc() { # want, case name
	if [[ $rc -ne $1 ]]; then
		fail "$2: want exit $1"
		return 1
	fi
}
expect_line() { # extended regex one output line must match, case name
	if ! grep -qE -- "$1" <<<"$out"; then
		fail "$2: no line matching '$1'"
	fi
}

# ---- This machine's config --------------------------------------------------------------------
# Where a config is found, the kernel running the tests must have everything; where none is,
# the check must say so with exit 2 rather than guess.
release=$(uname -r)
have_config=0
for f in /proc/config.gz "/boot/config-$release" "/lib/modules/$release/config"; do
	[[ -r $f ]] && have_config=1
done
run
if ((have_config)); then
	expect_rc 0 "real config" && expect_line '^result: ok' "real config"
else
	expect_rc 2 "no config on this machine" && expect_line 'looked in' "no config on this machine"
fi

# ---- Crafted configs --------------------------------------------------------------------------
# A config that gives every fragment option exactly the value asked for, so the crafted cases
# follow the fragments as they change.
full="$tmp/full.config"
{
	echo "# crafted by check_kernel_test.sh"
	grep -hE '^CONFIG_[A-Za-z0-9_]+=' "$root"/kernel-configs/*.config | sort -u
	echo "# CONFIG_UNRELATED is not set"
} >"$full"

run --config "$full"
expect_rc 0 "complete crafted config" && expect_line '^ok +CONFIG_BPF_SYSCALL=y$' "complete crafted config"
expect_line '^== runtime: skipped' "complete crafted config (no run-time checks with --config)"

# Gzipped, like /proc/config.gz.
gzip -c "$full" >"$tmp/full.config.gz"
run --config "$tmp/full.config.gz"
expect_rc 0 "gzipped crafted config" || true

# One required option missing: exit 1, and the line names it with its reason.
sed 's/^CONFIG_BPF_JIT=.*/# CONFIG_BPF_JIT is not set/' "$full" >"$tmp/no-jit.config"
run --config "$tmp/no-jit.config"
if expect_rc 1 "CONFIG_BPF_JIT missing"; then
	expect_line '^MISSING +CONFIG_BPF_JIT \(want y\) — .+' "CONFIG_BPF_JIT missing"
	expect_line '^result: FAIL .*CONFIG_BPF_JIT' "CONFIG_BPF_JIT missing"
fi

# An option left out entirely counts as missing too.
grep -v '^CONFIG_BRIDGE=' "$full" >"$tmp/no-bridge.config"
run --config "$tmp/no-bridge.config" lab
expect_rc 1 "CONFIG_BRIDGE absent" && expect_line '^MISSING +CONFIG_BRIDGE \(want m or y\)' "CONFIG_BRIDGE absent"

# A module where built-in is required: wrong value. A module where a module is enough: ok.
sed 's/^CONFIG_NET_NS=.*/CONFIG_NET_NS=m/; s/^CONFIG_VETH=.*/CONFIG_VETH=m/' "$full" >"$tmp/modules.config"
run --config "$tmp/modules.config" lab
if expect_rc 1 "CONFIG_NET_NS=m"; then
	expect_line '^WRONG +CONFIG_NET_NS=m \(want y\)' "CONFIG_NET_NS=m"
	expect_line '^ok +CONFIG_VETH=m$' "CONFIG_VETH=m"
fi
sed 's/^CONFIG_VETH=.*/CONFIG_VETH=y/' "$full" >"$tmp/veth-y.config"
run --config "$tmp/veth-y.config" lab.config
expect_rc 0 "CONFIG_VETH=y satisfies =m" || true

# ---- The check cannot run ---------------------------------------------------------------------
run --config "$tmp/does-not-exist/config"
expect_rc 2 "nonexistent config" && expect_line 'does-not-exist/config' "nonexistent config"

echo "not a kernel config" >"$tmp/junk"
run --config "$tmp/junk"
expect_rc 2 "file without CONFIG_ lines" || true

printf '# why\nCONFIG_BPF=y\nthis is not an option\n' >"$tmp/bad.config"
run --config "$full" "$tmp/bad.config"
expect_rc 2 "malformed fragment" && expect_line 'bad.config:3' "malformed fragment"

run --config "$full" no-such-fragment
expect_rc 2 "unknown fragment name" || true

if ((failures)); then
	echo "check_kernel_test: $failures case(s) failed"
	exit 1
fi
echo "check_kernel_test: all cases passed"
