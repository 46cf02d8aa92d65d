package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// profileWindow, when the bench runs with -pprof, asks authd's profiler
// for a CPU profile of the scenario's measured window and writes it to
// <pprof dir>/<store>-<scenario>.pprof. The returned function waits for
// the profile; a failure is reported on stderr, not fatal: the figures
// stand without it.
func profileWindow(t target, o options, name string) (wait func()) {
	if t.pprof == "" || o.pprofDir == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fetchProfile(t, o, name); err != nil {
			fmt.Fprintf(os.Stderr, "authd-bench: profile of %s: %v\n", name, err)
		}
	}()
	return func() { <-done }
}

func fetchProfile(t target, o options, name string) error {
	time.Sleep(o.warmup)
	secs := max(1, int(o.duration.Round(time.Second).Seconds()))
	client := http.Client{Timeout: time.Duration(secs+30) * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", t.pprof, secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /debug/pprof/profile: %s", resp.Status)
	}
	if err := os.MkdirAll(o.pprofDir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(o.pprofDir, t.store+"-"+name+".pprof"))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
