package api

import (
	"sync"
	"time"
)

// clientErrorLogBudget is how many request lines one route may log per
// second for one 4xx status. A flood of made-up tokens or bad requests is
// client input, and its lines would otherwise be as many as its requests;
// past the budget the lines are counted, and the next line logged for
// that route and status carries the count ("suppressed"). Metrics count
// every request whatever is logged.
const clientErrorLogBudget = 20

// logSampler decides which 4xx request lines are written. Its keys are
// route patterns and statuses, both from a finite set, so it needs no
// bound of its own.
type logSampler struct {
	now func() time.Time

	mu      sync.Mutex
	windows map[sampleKey]*sampleWindow
}

type sampleKey struct {
	route  string
	status int
}

type sampleWindow struct {
	second     int64 // the Unix second this window counts
	logged     int
	suppressed int // lines dropped since the last one written
}

func newLogSampler(now func() time.Time) *logSampler {
	return &logSampler{now: now, windows: map[sampleKey]*sampleWindow{}}
}

// admit reports whether a line for route and status is written, and if so
// how many lines for the same key were dropped before it. Lines with a
// status outside 400–499 are always written.
func (s *logSampler) admit(route string, status int) (write bool, suppressed int) {
	if status < 400 || status > 499 {
		return true, 0
	}
	sec := s.now().Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sampleKey{route, status}
	w := s.windows[k]
	if w == nil {
		w = &sampleWindow{second: sec}
		s.windows[k] = w
	}
	if w.second != sec {
		w.second, w.logged = sec, 0
	}
	if w.logged >= clientErrorLogBudget {
		w.suppressed++
		return false, 0
	}
	w.logged++
	suppressed, w.suppressed = w.suppressed, 0
	return true, suppressed
}
