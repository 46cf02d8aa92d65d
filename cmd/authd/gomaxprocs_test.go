package main

import (
	"runtime"
	"testing"
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
