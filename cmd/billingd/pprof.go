package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// servePprof exposes net/http/pprof on PPROF_ADDR (loopback only, checked
// in config) for profiling a running replica; off when unset.
func (e *env) servePprof() (func(), error) {
	if e.cfg.PprofAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", e.cfg.PprofAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on PPROF_ADDR %s: %w", e.cfg.PprofAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	e.log.Info("pprof serving", "pprof_addr", ln.Addr().String())
	return func() { _ = hs.Close() }, nil
}
