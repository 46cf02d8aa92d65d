#!/usr/bin/env bash
# End-to-end tests: bin/authd on a throwaway Postgres, driven by
# matrix-js-sdk in Node and in headless Chromium (make e2e).
#
# It builds bin/authd, starts a Postgres cluster with pg_virtualenv, migrates
# it, creates the users of e2e/lib/fixtures.mjs, starts two authd instances on
# free loopback ports (one without rate limits and with 1 s refreshable access
# tokens, one with the default per-IP login limit), waits until both answer
# /readyz, runs `node --test` in e2e/ and stops authd whatever happens. Logs
# go to a temporary directory; authd's are printed when anything fails.
# Arguments are passed to `node --test` (e.g. e2e/run.sh
# --test-name-pattern=browser). AUTHD_E2E_BIN=PATH tests that authd binary
# instead of building bin/authd.
set -euo pipefail

e2e=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$e2e")
authd=${AUTHD_E2E_BIN:-$root/bin/authd}

# The outer run: check prerequisites, build, then start over inside a
# throwaway Postgres cluster, which pg_virtualenv removes when we return.
if [ -z "${AUTHD_E2E_INSIDE_PG:-}" ]; then
	for cmd in node npm pg_virtualenv; do
		command -v "$cmd" >/dev/null || { echo "e2e: needs $cmd (see README.md, End-to-end tests)" >&2; exit 1; }
	done
	[ -x /usr/bin/chromium ] || { echo "e2e: needs /usr/bin/chromium: apt-get install chromium" >&2; exit 1; }
	if [ -z "${AUTHD_E2E_BIN:-}" ]; then
		make -C "$root" --no-print-directory build
	fi
	# npm ci when node_modules is missing or older than the lock file. No
	# package needs its install script (esbuild finds its platform binary
	# without it; playwright-core has none and never downloads a browser).
	if [ "$e2e/package-lock.json" -nt "$e2e/node_modules/.package-lock.json" ]; then
		(cd "$e2e" && npm ci --no-audit --no-fund --ignore-scripts)
	fi
	AUTHD_E2E_INSIDE_PG=1 exec pg_virtualenv -t bash "$0" "$@"
fi

logs=$(mktemp -d "${TMPDIR:-/tmp}/authd-e2e.XXXXXX")
pids=()
failed=1

print_logs() {
	for f in "$logs"/authd-*.log; do
		[ -e "$f" ] || continue
		printf '\n==> %s\n' "$f" >&2
		cat "$f" >&2
	done
}

cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ "$failed" = 1 ]; then
		print_logs
		echo "e2e: FAILED; logs kept in $logs" >&2
	else
		rm -rf "$logs"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export AUTHD_DATABASE_URL="postgres://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$PGDATABASE?sslmode=disable"
export AUTHD_SERVER_NAME=authd.test
export AUTHD_BCRYPT_COST=4
export AUTHD_LOG_FORMAT=text

"$authd" migrate up

# Users, from the fixtures the tests read: localpart, password, email.
while IFS=$'\t' read -r localpart password email; do
	args=(user create "$localpart" --password-stdin)
	[ -n "$email" ] && args+=(--email "$email")
	printf '%s\n' "$password" | "$authd" "${args[@]}"
done < <(node "$e2e/lib/fixtures.mjs")

# free_port prints a TCP port that was free on 127.0.0.1 a moment ago.
free_port() {
	node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# start_authd NAME VAR=VALUE...: starts `authd serve` on a free loopback port
# with the given settings, waits until /readyz answers 200, and sets $url to
# its base URL. A port taken between free_port and authd's listen is retried.
start_authd() {
	local name=$1 log=$logs/authd-$1.log attempt try port pid
	shift
	for attempt in 1 2 3; do
		port=$(free_port)
		url=http://127.0.0.1:$port
		env "$@" AUTHD_LISTEN="127.0.0.1:$port" AUTHD_PUBLIC_BASEURL="$url" \
			"$authd" serve >"$log" 2>&1 &
		pid=$!
		pids+=("$pid")
		# Up to 20 s: a fresh binary on a fresh cluster is ready in well under one.
		for try in $(seq 200); do
			if ! kill -0 "$pid" 2>/dev/null; then
				break
			fi
			if "$authd" healthcheck --listen "127.0.0.1:$port" >/dev/null 2>&1; then
				echo "e2e: authd ($name) ready at $url"
				return 0
			fi
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "e2e: authd ($name) not ready at $url after 20 s" >&2
			return 1
		fi
		wait "$pid" || true
		grep -q 'address already in use' "$log" || { echo "e2e: authd ($name) exited" >&2; return 1; }
		mv "$log" "$log.$attempt"
	done
	echo "e2e: authd ($name) could not get a free port" >&2
	return 1
}

# Access tokens issued with a refresh token live 1 s here (tests/expiry);
# the others do not expire.
start_authd open AUTHD_RATELIMIT=off AUTHD_SERVE_VERSIONS=true AUTHD_ACCESS_TOKEN_TTL=1s
export AUTHD_E2E_BASEURL=$url
start_authd ratelimited AUTHD_RATELIMIT=on
export AUTHD_E2E_LIMITED_BASEURL=$url
export AUTHD_E2E_SERVER_NAME=$AUTHD_SERVER_NAME

cd "$e2e"
node --test --test-concurrency=3 --test-timeout=60000 "$@"
failed=0
