package bench

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Worker makes the requests of one connection.
type Worker interface {
	// Next returns the next request, or false when the worker has none
	// left (its pre-minted tokens are spent).
	Next() (Request, bool)
	// Done is told each response, for a worker whose next request depends
	// on it (a refresh chain). The body is valid only during the call.
	Done(status int, body []byte)
}

// Fixed is a Worker that sends the same request forever.
type Fixed Request

// Next implements Worker.
func (f Fixed) Next() (Request, bool) { return Request(f), true }

// Done implements Worker.
func (Fixed) Done(int, []byte) {}

// Queue is a Worker that sends each of its requests once.
type Queue struct{ reqs []Request }

// NewQueue returns a Worker sending reqs in order.
func NewQueue(reqs []Request) *Queue { return &Queue{reqs: reqs} }

// Next implements Worker.
func (q *Queue) Next() (Request, bool) {
	if len(q.reqs) == 0 {
		return nil, false
	}
	r := q.reqs[0]
	q.reqs = q.reqs[1:]
	return r, true
}

// Done implements Worker.
func (*Queue) Done(int, []byte) {}

// Closed is a closed-loop load: Conns connections, each sending its next
// request as soon as the previous one is answered. Requests answered
// during the warm-up are not counted; those answered in the Duration that
// follows are.
type Closed struct {
	Addr      string
	Conns     int
	Warmup    time.Duration
	Duration  time.Duration
	NewWorker func(i int) Worker
	// OK says which statuses are the scenario's expected answer; any other
	// status, or a connection error, is an error.
	OK func(status int) bool
}

// Result is what a load measured in its window.
type Result struct {
	// Requests counts the responses received in the window, errors
	// included.
	Requests int
	// Errors counts responses with an unexpected status, and failed
	// round trips, in the window.
	Errors int
	// Statuses counts the responses in the window by status (0: a failed
	// round trip).
	Statuses map[int]int
	// Elapsed is the window: Duration, or less when every worker ran out
	// of requests first.
	Elapsed time.Duration
	// Latencies are the round-trip times of the responses in the window,
	// sorted.
	Latencies []time.Duration
	// Exhausted is set when workers ran out of requests before the end.
	Exhausted bool
	// Dials counts connections made beyond the first of each worker.
	Redials int
}

// PerSecond is the rate of responses in the window.
func (r Result) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Percentile returns the q-quantile (0 < q <= 1) of the latencies by
// nearest rank; 0 without any.
func (r Result) Percentile(q float64) time.Duration { return percentile(r.Latencies, q) }

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// sample is one response.
type sample struct {
	done    time.Time
	latency time.Duration
	status  int
	ok      bool
}

// Run dials every connection, then drives the load and returns what it
// measured. Dial errors are returned before anything is sent.
func (l Closed) Run() (Result, error) {
	conns := make([]*Conn, l.Conns)
	for i := range conns {
		c, err := Dial(l.Addr)
		if err != nil {
			closeAll(conns)
			return Result{}, err
		}
		conns[i] = c
	}
	defer closeAll(conns)
	start := time.Now().Add(l.Warmup)
	end := start.Add(l.Duration)
	samples := make([][]sample, l.Conns)
	var exhausted atomic.Bool
	var wg sync.WaitGroup
	for i, c := range conns {
		w := l.NewWorker(i)
		wg.Go(func() {
			var own []sample
			for {
				req, ok := w.Next()
				if !ok {
					exhausted.Store(true)
					break
				}
				t0 := time.Now()
				status, body, err := c.Do(req)
				t1 := time.Now()
				if err == nil {
					w.Done(status, body)
				}
				if !t1.Before(start) && t1.Before(end) {
					own = append(own, sample{done: t1, latency: t1.Sub(t0), status: status, ok: err == nil && l.OK(status)})
				}
				if !t1.Before(end) {
					break
				}
			}
			samples[i] = own
		})
	}
	wg.Wait()
	res := collect(samples, start, end, exhausted.Load())
	for _, c := range conns {
		res.Redials += c.Dials - 1
	}
	return res, nil
}

func collect(samples [][]sample, start, end time.Time, exhausted bool) Result {
	res := Result{Statuses: map[int]int{}, Exhausted: exhausted}
	last := start
	for _, own := range samples {
		for _, s := range own {
			res.Requests++
			res.Statuses[s.status]++
			if !s.ok {
				res.Errors++
			}
			res.Latencies = append(res.Latencies, s.latency)
			if s.done.After(last) {
				last = s.done
			}
		}
	}
	slices.Sort(res.Latencies)
	res.Elapsed = end.Sub(start)
	if exhausted {
		res.Elapsed = last.Sub(start)
	}
	return res
}

func closeAll(conns []*Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// Open is an open-loop load: requests are sent at a fixed rate, whether or
// not earlier ones were answered, each on a connection that is free. Conns
// must cover the rate times the longest latency; a request that finds no
// free connection is not sent and is counted in Missed.
type Open struct {
	Addr     string
	Conns    int
	Rate     float64 // requests per second
	Warmup   time.Duration
	Duration time.Duration
	Request  Request
}

// OpenResult is what an open-loop load measured in its window, by status.
type OpenResult struct {
	Sent      int
	Missed    int
	Statuses  map[int]int
	Latencies map[int][]time.Duration // sorted, by status (0: failed round trip)
	Elapsed   time.Duration
}

// Max returns the longest latency of the responses with status.
func (r OpenResult) Max(status int) time.Duration {
	l := r.Latencies[status]
	if len(l) == 0 {
		return 0
	}
	return l[len(l)-1]
}

// Run dials every connection, then sends at the rate for the warm-up and
// the duration, and waits for the last answers.
func (l Open) Run() (OpenResult, error) {
	conns := make([]*Conn, l.Conns)
	for i := range conns {
		c, err := Dial(l.Addr)
		if err != nil {
			closeAll(conns)
			return OpenResult{}, err
		}
		conns[i] = c
	}
	defer closeAll(conns)
	start := time.Now().Add(l.Warmup)
	end := start.Add(l.Duration)
	tick := make(chan time.Time)
	samples := make([][]sample, l.Conns)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			var own []sample
			for t0 := range tick {
				status, _, err := c.Do(l.Request)
				t1 := time.Now()
				if !t0.Before(start) && t0.Before(end) {
					own = append(own, sample{done: t1, latency: t1.Sub(t0), status: status, ok: err == nil})
				}
			}
			samples[i] = own
		})
	}
	res := OpenResult{Statuses: map[int]int{}, Latencies: map[int][]time.Duration{}, Elapsed: end.Sub(start)}
	interval := time.Duration(float64(time.Second) / l.Rate)
	for next := time.Now(); next.Before(end); next = next.Add(interval) {
		time.Sleep(time.Until(next))
		now := time.Now()
		select {
		case tick <- now:
			if !now.Before(start) {
				res.Sent++
			}
		default:
			if !now.Before(start) {
				res.Missed++
			}
		}
	}
	close(tick)
	wg.Wait()
	for _, own := range samples {
		for _, s := range own {
			st := s.status
			if !s.ok {
				st = 0
			}
			res.Statuses[st]++
			res.Latencies[st] = append(res.Latencies[st], s.latency)
		}
	}
	for _, l := range res.Latencies {
		slices.Sort(l)
	}
	return res, nil
}

// Calls is a closed loop of function calls instead of HTTP requests: Workers
// goroutines, each calling Call again as soon as it returns, counted like
// Closed's requests (a nil error as status 200, an error as 0). It measures
// what authd's requests are compared with, such as the database's own
// commit rate.
type Calls struct {
	Workers  int
	Warmup   time.Duration
	Duration time.Duration
	Call     func(worker int) error
}

// Run drives the calls and returns what it measured.
func (l Calls) Run() Result {
	start := time.Now().Add(l.Warmup)
	end := start.Add(l.Duration)
	samples := make([][]sample, l.Workers)
	var wg sync.WaitGroup
	for i := range l.Workers {
		wg.Go(func() {
			var own []sample
			for {
				t0 := time.Now()
				err := l.Call(i)
				t1 := time.Now()
				if !t1.Before(start) && t1.Before(end) {
					s := sample{done: t1, latency: t1.Sub(t0), status: 200, ok: err == nil}
					if err != nil {
						s.status = 0
					}
					own = append(own, s)
				}
				if !t1.Before(end) {
					break
				}
			}
			samples[i] = own
		})
	}
	wg.Wait()
	return collect(samples, start, end, false)
}
