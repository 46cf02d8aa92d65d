package bench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestConn_Do(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/json":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTeapot)
			fmt.Fprint(w, `{"ok":true}`)
		case "/chunked":
			for i := range 3 {
				fmt.Fprintf(w, "part%d;", i)
				w.(http.Flusher).Flush()
			}
		case "/close":
			w.Header().Set("Connection", "close")
			fmt.Fprint(w, "bye")
		case "/echo":
			b := new(strings.Builder)
			fmt.Fprint(b, r.Method, " ", r.Header.Get("Authorization"), " ", r.ContentLength)
			fmt.Fprint(w, b.String())
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	c, err := Dial(host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tests := []struct {
		req        Request
		wantStatus int
		wantBody   string
	}{
		{NewRequest("GET", host, "/json", ""), 418, `{"ok":true}`},
		{NewRequest("GET", host, "/chunked", ""), 200, "part0;part1;part2;"},
		{NewRequest("POST", host, "/echo", `{"a":1}`, "Authorization: Bearer x"), 200, "POST Bearer x 7"},
		{NewRequest("GET", host, "/close", ""), 200, "bye"},
		{NewRequest("POST", host, "/echo", ""), 200, "POST  0"},
	}
	for _, tt := range tests {
		status, body, err := c.Do(tt.req)
		if err != nil || status != tt.wantStatus || string(body) != tt.wantBody {
			t.Fatalf("%q: %d %q %v; want %d %q", tt.req, status, body, err, tt.wantStatus, tt.wantBody)
		}
	}
	if c.Dials != 2 {
		t.Fatalf("dials = %d, want 2 (one redial after Connection: close)", c.Dials)
	}
}

func TestClosed_Run(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%10 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	r, err := Closed{
		Addr: host, Conns: 2, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond,
		NewWorker: func(int) Worker { return Fixed(NewRequest("GET", host, "/", "")) },
		OK:        func(s int) bool { return s == 200 },
	}.Run()
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Errors == 0 || r.Statuses[500] != r.Errors || r.Elapsed != 200*time.Millisecond || len(r.Latencies) != r.Requests {
		t.Fatalf("result %+v", r)
	}
	if r.Percentile(0.5) > r.Percentile(0.99) || r.Percentile(0.99) > r.Percentile(1) {
		t.Fatal("percentiles out of order")
	}

	// A worker that runs out ends early, and the rate is over what ran.
	r, err = Closed{
		Addr: host, Conns: 1, Duration: time.Minute,
		NewWorker: func(int) Worker {
			return NewQueue([]Request{NewRequest("GET", host, "/", ""), NewRequest("GET", host, "/", "")})
		},
		OK: func(int) bool { return true },
	}.Run()
	if err != nil || !r.Exhausted || r.Requests != 2 || r.Elapsed >= time.Minute {
		t.Fatalf("exhausted run = %+v, %v", r, err)
	}
}

func TestOpen_Run(t *testing.T) {
	const window = 100 * time.Millisecond
	// Every answer is held until the window is over (counted from the first
	// request, which comes at its start): the two connections are then busy
	// throughout, and every later tick finds none free.
	var once sync.Once
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { time.AfterFunc(window+200*time.Millisecond, func() { close(release) }) })
		<-release
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	r, err := Open{Addr: host, Conns: 2, Rate: 200, Duration: window, Request: NewRequest("GET", host, "/", "")}.Run()
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 2 || r.Missed == 0 || r.Statuses[429] != 2 || len(r.Latencies[429]) != 2 {
		t.Fatalf("result %+v, want 2 sent and answered 429, the other ticks missed", r)
	}
}

func TestProc(t *testing.T) {
	pid := os.Getpid()
	if n, err := CPUs(pid); err != nil || n < 1 {
		t.Fatalf("CPUs = %d, %v", n, err)
	}
	if peak, err := PeakRSS(pid); err != nil || peak <= 0 {
		t.Fatalf("PeakRSS = %d, %v", peak, err)
	}
	// CPUTime reads /proc in clock ticks; getrusage counts the same time
	// otherwise. Burn a known amount and both must agree on it, give or
	// take a tick or two of rounding.
	const burn, slack = 60 * time.Millisecond, 30 * time.Millisecond
	self0 := SelfCPUTime()
	proc0, err := CPUTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	for SelfCPUTime()-self0 < burn {
	}
	proc1, err := CPUTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	self := SelfCPUTime() - self0
	if grew := proc1 - proc0; grew < burn-slack || grew > self+slack {
		t.Fatalf("CPUTime grew by %v over a burn of %v (getrusage: %v)", grew, burn, self)
	}
	if busy, total, err := MachineCPU(); err != nil || total <= 0 || busy > total {
		t.Fatalf("MachineCPU = %v, %v, %v", busy, total, err)
	}
}

func TestChildren(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep to start:", err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	kids, err := Children(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(kids, cmd.Process.Pid) {
		t.Fatalf("Children = %v, want %d among them", kids, cmd.Process.Pid)
	}
	if kids, err := Children(cmd.Process.Pid); err != nil || len(kids) != 0 {
		t.Fatalf("Children(sleep) = %v, %v; want none", kids, err)
	}
}
