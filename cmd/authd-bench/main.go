package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// databaseEnv names the Postgres server the bench creates its database on.
const databaseEnv = "AUTHD_BENCH_DATABASE_URL"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "authd-bench:", err)
		}
		os.Exit(1)
	}
}

type options struct {
	authd        string
	stores       []string
	adminURL     string
	warmup       time.Duration
	duration     time.Duration
	smoke        bool
	out          string
	cost         int
	queueTimeout time.Duration
	conns        int
	wrk          string // the outside load generator's binary
	logoutTokens int
	flood        float64
	authdEnv     []string
	scenarios    []string // empty: all
	nginx        string
	// revocationRounds is how many tokens the revocation-across-replicas
	// scenario revokes.
	revocationRounds int
	nginxVersion     string // nginx -v, when a scenario needs nginx
	// pprofDir, when set, receives a CPU profile of authd over each
	// scenario's measured window (AUTHD_PPROF_LISTEN).
	pprofDir string
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var o options
	fs := flag.NewFlagSet("authd-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stores := fs.String("stores", "postgres,sqlite", "stores to run on, in order")
	fs.StringVar(&o.authd, "authd", "", "the authd binary (empty: go build ./cmd/authd into a temporary directory)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up of each scenario, not measured")
	fs.DurationVar(&o.duration, "duration", 6*time.Second, "measured window of each scenario")
	fs.BoolVar(&o.smoke, "smoke", false, "a seconds-long run that checks the bench works; no target is asserted")
	fs.StringVar(&o.out, "out", "bench/results.json", "write the results as JSON here (empty: don't)")
	fs.IntVar(&o.cost, "cost", 10, "AUTHD_BCRYPT_COST")
	fs.DurationVar(&o.queueTimeout, "hash-queue-timeout", 5*time.Second, "AUTHD_HASH_QUEUE_TIMEOUT: the longest wait for a hashing slot a login queues for (authd's default)")
	fs.IntVar(&o.conns, "conns", 32, "connections of the scenarios that do not hash (healthz, whoami, verify, logout, refresh)")
	fs.StringVar(&o.wrk, "wrk", "wrk", "the outside load generator (Debian's wrk) that whoami and login are cross-checked with")
	fs.IntVar(&o.logoutTokens, "logout-tokens", 0, "access tokens minted for the two logout scenarios (0: enough for this machine with a margin, 120000 on Postgres, 60000 on SQLite)")
	fs.Float64Var(&o.flood, "flood", 4, "the login flood's offered rate, in multiples of the bcrypt bound")
	fs.Var((*stringList)(&o.authdEnv), "authd-env", "KEY=VALUE added to authd's environment (repeatable), e.g. AUTHD_TOKEN_CACHE_TTL=0")
	fs.StringVar(&o.nginx, "nginx", "/usr/sbin/nginx", "the nginx binary of the "+nginxScenario+" scenario (postgres)")
	fs.IntVar(&o.revocationRounds, "revocation-rounds", 200, "tokens the "+revocationScenario+" scenario revokes on one replica and times until the other refuses them")
	fs.StringVar(&o.pprofDir, "pprof", "", "write a CPU profile of authd over each scenario's measured window into this directory (<store>-<scenario>.pprof; read with go tool pprof -top)")
	scenarios := fs.String("scenarios", "", "run only these scenarios (comma-separated names); targets are then not asserted")
	err := fs.Parse(args)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.stores = strings.Split(*stores, ",")
	if *scenarios != "" {
		o.scenarios = strings.Split(*scenarios, ",")
	}
	o.adminURL = getenv(databaseEnv)
	if slices.Contains(o.stores, "postgres") && (len(o.scenarios) == 0 || slices.Contains(o.scenarios, nginxScenario)) {
		v, err := checkNginx(o.nginx)
		if err != nil {
			return err
		}
		o.nginxVersion = v
	}
	if len(o.scenarios) == 0 || slices.ContainsFunc(o.scenarios, isWrkScenario) {
		if o.wrk, err = checkWrk(o.wrk); err != nil {
			return err
		}
	}
	if o.smoke {
		o.warmup, o.duration = 200*time.Millisecond, 500*time.Millisecond
		o.revocationRounds = min(o.revocationRounds, 5)
		if o.logoutTokens == 0 {
			o.logoutTokens = 5000
		}
	}

	dir, err := os.MkdirTemp("", "authd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.authd == "" {
		o.authd = filepath.Join(dir, "authd")
		fmt.Fprintln(stderr, "building authd")
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", o.authd, "./cmd/authd")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build authd: %w", err)
		}
	}

	res := results{
		Started: time.Now().UTC(), Smoke: o.smoke, GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		CPUs: runtime.NumCPU(), BcryptCost: o.cost, HashQueueTimeoutMS: o.queueTimeout.Milliseconds(),
		WarmupS: o.warmup.Seconds(), DurationS: o.duration.Seconds(), AuthdEnv: o.authdEnv,
	}
	res.CPUModel = cpuModel()
	for _, kind := range o.stores {
		if kind != "postgres" && kind != "sqlite" {
			return fmt.Errorf("-stores: %q is not postgres or sqlite", kind)
		}
		sub := filepath.Join(dir, kind)
		if err := os.Mkdir(sub, 0o700); err != nil {
			return err
		}
		sr, err := runStore(ctx, o, kind, sub, stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		printStore(stdout, sr, o)
		res.Stores = append(res.Stores, sr)
	}
	res.Pass = true
	for _, sr := range res.Stores {
		for _, c := range sr.Checks {
			res.Pass = res.Pass && c.Pass
		}
	}
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", o.out)
	}
	// A broken scenario (nginx's balancing) fails every run, smoke runs
	// and runs of some scenarios included: it is not a figure missed.
	var broken []string
	for _, sr := range res.Stores {
		for _, c := range sr.Checks {
			if c.Required && !c.Pass {
				broken = append(broken, sr.Store+": "+c.Name)
			}
		}
	}
	if len(broken) > 0 {
		return fmt.Errorf("scenario failed: %s (see above)", strings.Join(broken, ", "))
	}
	switch {
	case o.smoke:
		fmt.Fprintln(stdout, "smoke run: targets not asserted")
	case len(o.scenarios) > 0:
		fmt.Fprintln(stdout, "some scenarios left out: targets not asserted")
	case !res.Pass:
		return errors.New("targets missed (see the ratios above)")
	default:
		fmt.Fprintln(stdout, "every target met")
	}
	return nil
}

// cpuModel names the machine's CPU, for the record.
func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
