package main

import (
	"runtime"
	"testing"
	"time"
)

// serve keeps one P more than hashing can take, and gives it back.
func TestReserveProc(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(procs)
	n, restore := reserveProc(0)
	if n != procs || runtime.GOMAXPROCS(0) != procs+1 {
		t.Fatalf("reserveProc(0) = %d with GOMAXPROCS %d; want %d and %d", n, runtime.GOMAXPROCS(0), procs, procs+1)
	}
	restore()
	if runtime.GOMAXPROCS(0) != procs {
		t.Fatalf("GOMAXPROCS %d after restore, want %d", runtime.GOMAXPROCS(0), procs)
	}
	// A hashing bound below GOMAXPROCS leaves a P free already.
	runtime.GOMAXPROCS(4)
	n, restore = reserveProc(2)
	restore()
	if n != 2 || runtime.GOMAXPROCS(0) != 4 {
		t.Fatalf("reserveProc(2) on 4 Ps = %d, GOMAXPROCS %d", n, runtime.GOMAXPROCS(0))
	}
}

func TestConfig_TokenCacheTTL(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
		bad   bool
	}{
		{"", 5 * time.Second, false},
		{"1s", time.Second, false},
		{"0", 0, false},
		{"off", 0, false},
		{"1m", time.Minute, false},
		{"2m", 0, true},
		{"-1s", 0, true},
		{"soon", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c, err := parseConfig(t, env("AUTHD_TOKEN_CACHE_TTL="+tt.value))
			if tt.bad {
				wantErr(t, err, "AUTHD_TOKEN_CACHE_TTL")
				return
			}
			if err != nil || c.TokenCacheTTL != tt.want {
				t.Fatalf("TokenCacheTTL = %v, %v; want %v", c.TokenCacheTTL, err, tt.want)
			}
		})
	}
}
