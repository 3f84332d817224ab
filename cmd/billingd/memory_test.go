package main

import "testing"

// The returner collects and returns memory only once allocation has gone
// quiet (no collection for a whole interval) and the process holds more
// than the floor and half again its last baseline.
func TestMemoryReturner(t *testing.T) {
	const mib = 1 << 20
	type reading struct{ cycles, held uint64 }
	tests := []struct {
		name     string
		readings []reading // per tick, what the runtime reports (after a return: the next one too)
		want     []bool
	}{
		{"BusyNeverReturns", []reading{{1, 400 * mib}, {5, 400 * mib}, {9, 400 * mib}}, []bool{false, false, false}},
		{"QuietAfterBurstReturnsOnce", []reading{{7, 400 * mib}, {7, 400 * mib}, {8, 30 * mib}, {8, 30 * mib}}, []bool{false, true, false}},
		{"QuietAndSmallStaysAlone", []reading{{3, 30 * mib}, {3, 30 * mib}, {3, 30 * mib}}, []bool{false, false, false}},
		{"QuietNearBaselineStaysAlone", []reading{{2, 100 * mib}, {2, 100 * mib}, {3, 90 * mib}, {3, 110 * mib}, {3, 120 * mib}}, []bool{false, true, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, freed := 0, 0
			m := &memoryReturner{
				floor: 48 * mib,
				read: func() (uint64, uint64) {
					r := tt.readings[i]
					i++
					return r.cycles, r.held
				},
				free: func() { freed++ },
			}
			for tick, want := range tt.want {
				if got := m.tick(); got != want {
					t.Fatalf("tick %d: returned %v, want %v", tick, got, want)
				}
			}
			if n := countTrue(tt.want); freed != n {
				t.Fatalf("freed %d times, want %d", freed, n)
			}
		})
	}
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
