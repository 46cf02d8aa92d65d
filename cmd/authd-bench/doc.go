// Command authd-bench measures authd against the physical bounds of the
// machine it runs on. It starts authd itself, once on a fresh Postgres
// database and once on SQLite, with rate limits off and bcrypt at cost 10,
// drives each scenario with a fixed number of keep-alive connections (a
// warm-up, then a fixed measured window), and prints per store a table of
// requests/s, p50, p99 and errors, the bounds (bcrypt: CPUs / one
// comparison; HTTP: /healthz), the target ratios, and authd's peak RSS. It
// writes the figures as JSON and exits 1 when a target is missed.
//
// On Postgres it also runs the whoami load through nginx (-nginx, Debian's
// /usr/sbin/nginx) in front of two authd replicas on the one database, and
// reports the rate beside the direct one and how nginx split the requests:
// a replica with less than 30% of them fails the run, smoke runs included.
//
// On both stores it last starts a second authd on the same database and
// times, over -revocation-rounds tokens (a few in a smoke run), how long
// after a logout on one authd the other, which had the token cached, still
// honours it: p50, p99 and max, with no target.
//
//	authd-bench -authd bin/authd            # AUTHD_BENCH_DATABASE_URL: a Postgres server
//	authd-bench -authd bin/authd -smoke     # seconds, no targets asserted
//
// authd-bench is a development tool, run by `make bench` and CI's
// `make bench-smoke`; it is not shipped: the container image and `make
// build` hold authd alone.
package main
