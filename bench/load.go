package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is what one load stage measured.
type loadResult struct {
	n        int
	errors   int64
	elapsed  time.Duration
	p50, p99 time.Duration
}

func (r loadResult) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }

// runLoad calls fn(i) for i in [0,n) from c workers and measures each call.
// The first error is returned; the rest are counted.
func runLoad(ctx context.Context, c, n int, fn func(ctx context.Context, i int) error) (loadResult, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var errs atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				if err := fn(ctx, i); err != nil {
					errs.Add(1)
					once.Do(func() { first = err })
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	res := loadResult{n: n, errors: errs.Load(), elapsed: time.Since(start)}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.p50, res.p99 = lat[n/2], lat[n*99/100]
	if first != nil {
		return res, fmt.Errorf("%d of %d calls failed, first: %w", res.errors, n, first)
	}
	return res, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }
