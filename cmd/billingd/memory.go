package main

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Memory comes back after a burst (issue 15). Go returns freed heap to the
// operating system only after a garbage collection has found it free, and
// a collection only runs when the heap grows again (or every two minutes):
// after a flood of webhooks ends, the requests' garbage stays resident
// because nothing allocates any more. Measured: 372 MiB resident 60 s after
// an overload run, with 49 goroutines left. So while no collection has run
// for a whole interval (allocation is slow: the burst is over) and the
// process holds clearly more than after its last such return, billingd
// collects and returns what is free (debug.FreeOSMemory). Under load
// collections run every fraction of a second and this never fires; idle,
// it fires once per burst.
type memoryReturner struct {
	// floor: holding less than this is idle enough, whatever the baseline.
	floor uint64
	read  func() (gcCycles, held uint64)
	free  func()

	lastCycles uint64
	baseline   uint64 // held after the last return
}

func newMemoryReturner() *memoryReturner {
	samples := []metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	return &memoryReturner{
		floor: 48 << 20,
		read: func() (uint64, uint64) {
			metrics.Read(samples)
			return samples[0].Value.Uint64(), samples[1].Value.Uint64() - samples[2].Value.Uint64()
		},
		free: func() {
			// Two collections: buffers parked in sync.Pools (net/http keeps
			// each connection's bufio readers and writers there) survive
			// the first one in the pools' victim caches. Measured: 90 MiB
			// still in use 60 s after a 15,000-connection flood with one.
			runtime.GC()
			debug.FreeOSMemory()
		},
	}
}

// tick runs once per interval and reports whether it returned memory.
func (m *memoryReturner) tick() bool {
	cycles, held := m.read()
	quiet := cycles == m.lastCycles
	m.lastCycles = cycles
	if !quiet || held < m.floor || held < m.baseline+m.baseline/2 {
		return false
	}
	m.free()
	m.lastCycles, m.baseline = m.read()
	return true
}

// run ticks every interval until ctx ends.
func (m *memoryReturner) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.tick()
		}
	}
}
