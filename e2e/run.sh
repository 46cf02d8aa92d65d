#!/usr/bin/env bash
# End-to-end tests: bin/authd on a throwaway Postgres, driven by
# matrix-js-sdk in Node and in headless Chromium, directly and through real
# nginx with deploy/nginx/authd.conf (make e2e).
#
# It builds bin/authd, starts a Postgres cluster with pg_virtualenv, migrates
# it, creates the users of e2e/lib/fixtures.mjs, starts three authd instances
# on free loopback ports (one without rate limits and with 1 s refreshable
# access tokens, one with the default per-IP login limit, and one behind
# nginx that trusts it as its proxy), waits until they answer /readyz, starts
# nginx in front of the third and of the stand-in homeserver that
# tests/proxy.test.mjs serves, a fourth authd behind a second nginx and
# Caddy (deploy/caddy/Caddyfile) for tests/hardening.test.mjs, a fifth
# authd (login tokens on) behind a third nginx and a second Caddy for
# tests/account.test.mjs, runs `node --test` in e2e/ and stops nginx and
# authd whatever happens. tests/replicas.test.mjs starts a Redis server and
# three more authd replicas on the same database itself, and
# tests/admin.test.mjs an authd with the admin API on, which it drives
# with Debian's synadm (found on PATH or unpacked into e2e/.synadm). Logs go to a
# temporary directory; authd's, Redis's and nginx's are printed when anything
# fails. Arguments are passed to `node
# --test` (e.g. e2e/run.sh --test-name-pattern=browser). AUTHD_E2E_BIN=PATH
# tests that authd binary instead of building bin/authd; AUTHD_E2E_NGINX=PATH
# another nginx than /usr/sbin/nginx; AUTHD_E2E_REDIS_SERVER=PATH another
# redis-server than /usr/bin/redis-server; AUTHD_E2E_CADDY=PATH another caddy
# than /usr/bin/caddy; AUTHD_E2E_PYTHON3=PATH another python3 than
# /usr/bin/python3 (the WSGI stand-in of tests/hardening.test.mjs, which
# also gets a fourth authd behind a second nginx and Caddy).
set -euo pipefail

e2e=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$e2e")
authd=${AUTHD_E2E_BIN:-$root/bin/authd}
nginx=${AUTHD_E2E_NGINX:-/usr/sbin/nginx}
redis=${AUTHD_E2E_REDIS_SERVER:-/usr/bin/redis-server}
caddy=${AUTHD_E2E_CADDY:-/usr/bin/caddy}
python3=${AUTHD_E2E_PYTHON3:-/usr/bin/python3}

# The outer run: check prerequisites, build, then start over inside a
# throwaway Postgres cluster, which pg_virtualenv removes when we return.
if [ -z "${AUTHD_E2E_INSIDE_PG:-}" ]; then
	for cmd in node npm pg_virtualenv; do
		command -v "$cmd" >/dev/null || { echo "e2e: needs $cmd (see README.md, End-to-end tests)" >&2; exit 1; }
	done
	[ -x /usr/bin/chromium ] || { echo "e2e: needs /usr/bin/chromium: apt-get install chromium" >&2; exit 1; }
	[ -x "$nginx" ] || { echo "e2e: needs $nginx: apt-get install nginx" >&2; exit 1; }
	[ -x "$redis" ] || { echo "e2e: needs $redis: apt-get install redis-server" >&2; exit 1; }
	[ -x "$caddy" ] || { echo "e2e: needs $caddy: apt-get install caddy" >&2; exit 1; }
	[ -x "$python3" ] || { echo "e2e: needs $python3: apt-get install python3" >&2; exit 1; }
	if [ -z "${AUTHD_E2E_BIN:-}" ]; then
		make -C "$root" --no-print-directory build
	fi
	# tests/admin.test.mjs runs Debian's synadm: the installed one, or the
	# package and its Python dependencies unpacked from Debian's archive
	# into e2e/.synadm (no root needed; Debian's python3 runs it).
	if [ -z "${AUTHD_E2E_SYNADM:-}" ] && ! command -v synadm >/dev/null; then
		synadm_root=$e2e/.synadm
		if [ ! -x "$synadm_root/root/usr/bin/synadm" ]; then
			echo "e2e: unpacking Debian's synadm into $synadm_root" >&2
			mkdir -p "$synadm_root/debs"
			(cd "$synadm_root/debs" && apt-get download -qq synadm python3-click python3-click-option-group \
				python3-dnspython python3-requests python3-urllib3 python3-idna python3-certifi \
				python3-chardet python3-charset-normalizer python3-tabulate python3-six python3-yaml) ||
				{ echo "e2e: needs synadm: apt-get install synadm (or apt-get download must work)" >&2; exit 1; }
			for deb in "$synadm_root"/debs/*.deb; do dpkg-deb -x "$deb" "$synadm_root/root"; done
		fi
		export AUTHD_E2E_SYNADM="$python3 $synadm_root/root/usr/bin/synadm"
		export AUTHD_E2E_SYNADM_PYTHONPATH=$synadm_root/root/usr/lib/python3/dist-packages
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
	for f in "$logs"/authd-*.log "$logs"/redis.log "$logs"/nginx-replicas/error.log "$logs"/nginx/error.log "$logs"/nginx/access.log "$logs"/nginx-hardened/error.log "$logs"/nginx-hardened/access.log "$logs"/caddy/caddy.log "$logs"/nginx-account/error.log "$logs"/nginx-account/access.log "$logs"/caddy-account/caddy.log "$logs"/homeserver-*.log; do
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
# with the given settings (AUTHD_PUBLIC_BASEURL defaults to its own URL),
# waits until /readyz answers 200, and sets $url to its base URL and $port to
# its port. A port taken between free_port and authd's listen is retried.
start_authd() {
	local name=$1 log=$logs/authd-$1.log attempt try pid
	shift
	for attempt in 1 2 3; do
		port=$(free_port)
		url=http://127.0.0.1:$port
		# The settings given win over these defaults.
		env AUTHD_LISTEN="127.0.0.1:$port" AUTHD_PUBLIC_BASEURL="$url" "$@" \
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

# start_nginx PORT AUTHD HOMESERVER [NAME]: nginx on 127.0.0.1:PORT with
# deploy/nginx/authd.conf as shipped, except for its listen lines (one,
# on PORT) and its log paths (in $logs/NAME, default nginx; the levels as
# shipped), inside an nginx.conf of its own that defines the upstreams
# `authd` and `homeserver` (host:port each). nginx runs in the foreground
# with its prefix, pid, temporary files and logs in $logs/NAME, and is
# stopped with the authd instances.
start_nginx() {
	local port=$1 dir=$logs/${4:-nginx} shipped=$root/deploy/nginx/authd.conf pid try
	mkdir -p "$dir/tmp"
	# nginx's workers (nobody, when run as root) write temporary files here.
	chmod 755 "$logs" "$dir" "$dir/tmp"
	awk -v listen="listen 127.0.0.1:$port;" -v access_log="access_log $dir/access.log authd_redacted;" -v error_log="error_log $dir/error.log" '
		/^[ \t]*listen[ \t]/ { if (!done) { sub(/listen[^;]*;/, listen); print; done = 1 }; next }
		/^[ \t]*access_log[ \t]/ { sub(/access_log[^;]*;/, access_log); print; next }
		/^[ \t]*error_log[ \t]/ { sub(/error_log[ \t]+[^ \t;]+/, error_log); print; next }
		{ print }' "$shipped" >"$dir/authd.conf"
	if ! diff <(grep -Ev '^[[:space:]]*(listen|access_log)[[:space:]]' "$shipped" | sed -E 's/error_log[[:space:]]+[^[:space:];]+/error_log PATH/') \
		<(grep -Ev '^[[:space:]]*(listen|access_log)[[:space:]]' "$dir/authd.conf" | sed -E 's/error_log[[:space:]]+[^[:space:];]+/error_log PATH/') >&2 ||
		[ "$(grep -Ec '^[[:space:]]*listen[[:space:]]' "$dir/authd.conf")" != 1 ]; then
		echo "e2e: rendering $shipped changed more than its listen lines and log paths" >&2
		return 1
	fi
	cat >"$dir/nginx.conf" <<-EOF
		# Written by e2e/run.sh: deploy/nginx/authd.conf in front of loopback upstreams.
		worker_processes 1;
		pid $dir/nginx.pid;
		error_log $dir/error.log notice;
		events { worker_connections 512; }
		http {
			client_body_temp_path $dir/tmp/client_body;
			proxy_temp_path $dir/tmp/proxy;
			fastcgi_temp_path $dir/tmp/fastcgi;
			uwsgi_temp_path $dir/tmp/uwsgi;
			scgi_temp_path $dir/tmp/scgi;
			access_log $dir/access.log;
			upstream authd { server $2; keepalive 8; }
			upstream homeserver { server $3; keepalive 8; }
			include $dir/authd.conf;
		}
	EOF
	"$nginx" -t -q -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" || {
		echo "e2e: nginx -t refused $dir/nginx.conf" >&2
		return 1
	}
	"$nginx" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;' >>"$dir/error.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	wait_listening nginx "$pid" "$port"
}

# wait_listening NAME PID PORT: waits up to 10 s until PID listens on PORT.
wait_listening() {
	local try
	for try in $(seq 100); do
		kill -0 "$2" 2>/dev/null || { echo "e2e: $1 exited (port $3 taken?)" >&2; return 1; }
		if (exec 3<>"/dev/tcp/127.0.0.1/$3") 2>/dev/null; then
			echo "e2e: $1 ready at http://127.0.0.1:$3"
			return 0
		fi
		sleep 0.1
	done
	echo "e2e: $1 not listening on $3 after 10 s" >&2
	return 1
}

# start_caddy PORT AUTHD HOMESERVER [NAME]: Caddy on 127.0.0.1:PORT with
# deploy/caddy/Caddyfile as shipped, except for its admin line (off, so
# that parallel runs do not share an admin port); the site address and the
# upstreams come from the environment variables it reads (no TLS: an http://
# site). Its data, configuration and logs (stderr, where the shipped
# Caddyfile writes them) are in $logs/NAME (default caddy).
start_caddy() {
	local port=$1 dir=$logs/${4:-caddy} shipped=$root/deploy/caddy/Caddyfile pid
	mkdir -p "$dir"
	sed -E 's/^([[:space:]]*)admin[[:space:]].*$/\1admin off/' "$shipped" >"$dir/Caddyfile"
	if ! diff <(grep -Ev '^[[:space:]]*admin[[:space:]]' "$shipped") <(grep -Ev '^[[:space:]]*admin[[:space:]]' "$dir/Caddyfile") >&2 ||
		[ "$(grep -Ec '^[[:space:]]*admin off$' "$dir/Caddyfile")" != 1 ]; then
		echo "e2e: rendering $shipped changed more than its admin line" >&2
		return 1
	fi
	env AUTHD_SITE="http://127.0.0.1:$port" AUTHD_UPSTREAM="$2" HOMESERVER_UPSTREAM="$3" \
		HOME="$dir" XDG_DATA_HOME="$dir/data" XDG_CONFIG_HOME="$dir/config" \
		"$caddy" run --adapter caddyfile --config "$dir/Caddyfile" >"$dir/caddy.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	wait_listening caddy "$pid" "$port"
}

# The authd behind nginx: per-IP login limit on, nginx's address trusted to
# report the client's (when this authd knows AUTHD_TRUSTED_PROXIES; if not,
# the trusted-proxy test is reported as a todo), and the proxy as its public
# base URL.
proxy_port=$(free_port)
proxy_url=http://127.0.0.1:$proxy_port
trusted=()
serve_help=$("$authd" serve --help 2>&1 || true)
if [[ $serve_help == *-trusted-proxies* ]]; then
	trusted=(AUTHD_TRUSTED_PROXIES=127.0.0.1/32)
	export AUTHD_E2E_TRUSTED_PROXIES=1
else
	echo "e2e: this authd has no AUTHD_TRUSTED_PROXIES: the trusted-proxy test is a todo" >&2
	export AUTHD_E2E_TRUSTED_PROXIES=0
fi
start_authd proxied AUTHD_RATELIMIT=on AUTHD_PUBLIC_BASEURL="$proxy_url" "${trusted[@]}"
homeserver_port=$(free_port)
while [ "$homeserver_port" = "$proxy_port" ]; do homeserver_port=$(free_port); done
start_nginx "$proxy_port" "127.0.0.1:$port" "127.0.0.1:$homeserver_port"
export AUTHD_E2E_PROXY_BASEURL=$proxy_url
export AUTHD_E2E_HOMESERVER_PORT=$homeserver_port
export AUTHD_E2E_NGINX_ACCESS_LOG=$logs/nginx/access.log

# tests/hardening.test.mjs: known attacks reproduced through nginx and
# Caddy, each with the shipped config, in front of one more authd (per-IP
# budget of 3 failed token checks a minute; the proxies' 127.0.0.1 trusted)
# and of a WSGI stand-in homeserver each, which the test starts on the given
# port with $python3.
start_authd hardened AUTHD_RATELIMIT=on AUTHD_RATELIMIT_TOKEN_FAILURES=3/1m "${trusted[@]}"
hardened_authd=127.0.0.1:$port
export AUTHD_E2E_HARDENED_BASEURL=$url
hardened_nginx_port=$(free_port)
hardened_nginx_hs=$(free_port)
start_nginx "$hardened_nginx_port" "$hardened_authd" "127.0.0.1:$hardened_nginx_hs" nginx-hardened
hardened_caddy_port=$(free_port)
hardened_caddy_hs=$(free_port)
start_caddy "$hardened_caddy_port" "$hardened_authd" "127.0.0.1:$hardened_caddy_hs"
export AUTHD_E2E_HARDENED_PROXIES="nginx http://127.0.0.1:$hardened_nginx_port $hardened_nginx_hs $logs/nginx-hardened;caddy http://127.0.0.1:$hardened_caddy_port $hardened_caddy_hs $logs/caddy"
export AUTHD_E2E_PYTHON3=$python3

# tests/account.test.mjs: devices, User-Interactive Authentication,
# password change, deactivation, third-party IDs and login tokens, on an
# authd of their own (login tokens on; every rate limit off but the fixed
# one login token per user a minute; the proxies' 127.0.0.1 trusted),
# directly and through nginx and Caddy with the shipped configs, each in
# front of a stand-in homeserver the test serves.
start_authd account AUTHD_LOGIN_TOKENS=on AUTHD_RATELIMIT=on AUTHD_RATELIMIT_LOGIN_IP=off \
	AUTHD_RATELIMIT_LOGIN_FAILED=off AUTHD_RATELIMIT_LOGIN_SUCCESS=off AUTHD_RATELIMIT_REFRESH_IP=off \
	AUTHD_RATELIMIT_TOKEN_FAILURES=off "${trusted[@]}"
account_authd=127.0.0.1:$port
export AUTHD_E2E_ACCOUNT_BASEURL=$url
account_nginx_port=$(free_port)
account_nginx_hs=$(free_port)
start_nginx "$account_nginx_port" "$account_authd" "127.0.0.1:$account_nginx_hs" nginx-account
account_caddy_port=$(free_port)
account_caddy_hs=$(free_port)
start_caddy "$account_caddy_port" "$account_authd" "127.0.0.1:$account_caddy_hs" caddy-account
export AUTHD_E2E_ACCOUNT_PROXIES="nginx http://127.0.0.1:$account_nginx_port $account_nginx_hs;caddy http://127.0.0.1:$account_caddy_port $account_caddy_hs"

# tests/replicas.test.mjs starts its own Redis and three replicas on this
# database with this binary, logging into $logs.
export AUTHD_E2E_AUTHD=$authd AUTHD_E2E_LOGS=$logs AUTHD_E2E_REDIS_SERVER=$redis AUTHD_E2E_NGINX=$nginx

cd "$e2e"
node --test --test-concurrency=3 --test-timeout=60000 "$@"
failed=0
