package main

import "runtime"

// reserveProc returns the number of password checks serve runs at once (n,
// or GOMAXPROCS when n is 0) and makes sure the Go scheduler has one P more
// than that; the returned function restores the previous setting.
//
// bcrypt never blocks. With a hashing slot for every P, a login flood holds
// them all, and the runtime then polls the network only when its sysmon
// preempts a hash, every 10 ms: whoami, logout and the proxy's verify wait
// behind the flood (measured on 2 CPUs: whoami p99 from 4 to 56 ms). With
// one P to spare, a thread always waits in the network poller, and the
// kernel's scheduler, not Go's 10 ms preemption, shares the CPUs between
// the hashes and everything else. Hashing throughput is unchanged: the
// spare P only runs what is not hashing.
func reserveProc(n int) (int, func()) {
	procs := runtime.GOMAXPROCS(0)
	if n <= 0 {
		n = procs
	}
	if procs > n {
		return n, func() {}
	}
	runtime.GOMAXPROCS(n + 1)
	return n, func() { runtime.GOMAXPROCS(procs) }
}
