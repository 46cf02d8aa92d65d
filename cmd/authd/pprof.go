package main

import (
	"net/http"
	"net/http/pprof"
)

// pprofHandler serves Go's profiler under /debug/pprof/, for
// AUTHD_PPROF_LISTEN. Its own mux: importing net/http/pprof registers on
// http.DefaultServeMux too, which authd never serves. Not /cmdline: a
// secret given as a flag would be in it.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}
