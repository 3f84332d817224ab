package stripeapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/billingd/billingd/billing"
)

// Partitioned backfill. Stripe lists 100 objects a page, newest first,
// one page per request; a single cursor over a million subscriptions is
// 10,000 requests one after another, hours at Stripe's latency. So a list
// is split into parts by creation time and the parts are walked at once,
// as many as Syncer.Parallel, all through the client's pacer (at most
// STRIPE_READ_RATE requests per second, Retry-After honoured).
//
// Nobody knows in advance how a list's objects spread over time (most
// accounts grow, so the recent past is dense), so the parts are made by
// splitting while walking: a walker with nothing left to take halves the
// creation-time range still ahead of the running part expected to hold
// the most objects (its range ahead times the density its pages have
// shown), keeps the older half for itself and leaves the running walker
// the newer one. Only a part whose last page came back full is split, and
// only while it looks like holding two pages or more: every part costs at
// least one request of its own, and splitting what nobody has seen yet
// (a part whose first page is still on its way) or what is about to end
// filled whole seconds of the rate limit with empty pages. A walker that
// finds nothing worth splitting waits until another walker receives a
// page or ends its part, and looks again; it stops when no part is left
// running. Each part's progress is stored after every page
// (backfill_partitions), so a killed run resumes every part where it
// stopped.

// stripeEpoch is older than any object's creation: the lower bound used to
// halve the oldest part, whose own lower bound stays open.
var stripeEpoch = time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)

// minSplit is the narrowest creation-time range that is still split.
const minSplit = 2 * time.Second

// errPartDone stops a part's listing once it reaches the part's lower
// bound (raised by a split since its walk began).
var errPartDone = errors.New("part done")

// partWalk is one part and its walk in this run.
type partWalk struct {
	p       billing.BackfillPartition
	running bool
	from    time.Time // the part's upper bound when this run's walk of it began
	seen    int64     // objects on the pages this run's walk has claimed (applied, or being applied)
	// claimed is the oldest creation time on the page being applied:
	// a split never hands out anything at or above it.
	claimed *time.Time
	// full: the last page this walk claimed was a full one, so more is
	// likely ahead. False until the first page comes back: before that
	// nothing is known of the part, not even whether it is empty.
	full bool
}

// partitioner hands parts to walkers and splits them.
type partitioner struct {
	s     *Syncer
	list  string
	start time.Time // run start: the upper bound of the open newest part

	mu       sync.Mutex
	parts    []*partWalk
	nextPart int
	objects  int64 // objects applied in this run, every part
	last     time.Time
	// changed is closed (and replaced) when a walker receives a page or
	// ends its part: walkers waiting for something to split look again.
	changed chan struct{}
}

// touched wakes the walkers waiting in take. Called with mu held.
func (pr *partitioner) touched() {
	close(pr.changed)
	pr.changed = make(chan struct{})
}

// upper is a part's upper bound, the run's start for the open newest part.
func (pr *partitioner) upper(p billing.BackfillPartition) time.Time {
	if p.CreatedLTE != nil {
		return *p.CreatedLTE
	}
	return pr.start
}

// ahead is the creation-time range a split may take from: below the page
// being applied, whose objects are the running walker's.
func (pr *partitioner) ahead(pw *partWalk) (lo, hi time.Time) {
	lo, hi = lower(pw.p), pr.upper(pw.p)
	if pw.claimed != nil && pw.claimed.Before(hi) {
		hi = *pw.claimed
	}
	return lo, hi
}

func lower(p billing.BackfillPartition) time.Time {
	if p.CreatedGTE != nil {
		return *p.CreatedGTE
	}
	return stripeEpoch
}

// take returns a part to walk: one no walker has, else the older half of
// the running part expected to hold the most objects ahead, split off and
// stored before it is returned. While nothing is worth splitting it waits
// for the running walks' next pages; nil when no part is left running.
func (pr *partitioner) take(ctx context.Context) (*partWalk, error) {
	for {
		pr.mu.Lock()
		for _, pw := range pr.parts {
			if !pw.p.Done && !pw.running {
				pw.running, pw.from, pw.seen, pw.full = true, pr.upper(pw.p), 0, false
				pr.mu.Unlock()
				return pw, nil
			}
		}
		victim, span := pr.victim()
		if victim == nil {
			running := slices.ContainsFunc(pr.parts, func(pw *partWalk) bool { return pw.running && !pw.p.Done })
			changed := pr.changed
			pr.mu.Unlock()
			if !running {
				return nil, nil
			}
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		// At or below the claimed page's oldest second: the thief's objects
		// are all older than anything the victim is applying.
		mid := lower(victim.p).Add(span / 2).Truncate(time.Second)
		below := mid.Add(-time.Second)
		thief := &partWalk{p: billing.BackfillPartition{List: pr.list, Part: pr.nextPart, CreatedGTE: victim.p.CreatedGTE, CreatedLTE: &below},
			running: true, from: below}
		pr.nextPart++
		victim.p.CreatedGTE = &mid
		pr.parts = append(pr.parts, thief)
		save := []billing.BackfillPartition{victim.p, thief.p}
		pr.mu.Unlock()
		// Both bounds in one statement: a crash leaves the split whole or
		// not at all, never a gap.
		if err := pr.s.Store.SaveBackfillPartitions(ctx, save); err != nil {
			return nil, err
		}
		return thief, nil
	}
}

// victim is the running part worth splitting that is expected to hold the
// most objects ahead, and its range ahead; nil when none is: a part not
// seen a full page of yet, one narrower than minSplit, or one that looks
// like holding less than two pages at the density its walk has seen (a
// split costs at least one request of its own). Called with mu held.
func (pr *partitioner) victim() (*partWalk, time.Duration) {
	var victim *partWalk
	var span time.Duration
	var most float64
	for _, pw := range pr.parts {
		if pw.p.Done || !pw.running || !pw.full {
			continue
		}
		lo, hi := pr.ahead(pw)
		ahead := hi.Sub(lo)
		if ahead < minSplit {
			continue
		}
		d, _ := pr.density(pw)
		expect := d * ahead.Seconds()
		if expect < 2*float64(pr.s.Client.pageSize) || expect <= most {
			continue
		}
		victim, span, most = pw, ahead, expect
	}
	return victim, span
}

// density is the objects per second of creation time on the pages pw's
// walk has claimed (a full page within one second counts as a page a
// second); false before its first page.
func (pr *partitioner) density(pw *partWalk) (float64, bool) {
	if pw.seen == 0 {
		return 0, false
	}
	_, hi := pr.ahead(pw)
	return float64(pw.seen) / max(pw.from.Sub(hi).Seconds(), 1), true
}

// walk lists one part and applies it page by page, storing its progress
// after each page.
func (pr *partitioner) walk(ctx context.Context, pw *partWalk, counts *Counts, fails *[]Failure, cmu *sync.Mutex) error {
	pr.mu.Lock()
	var w Window
	if pw.p.CreatedGTE != nil {
		w.GTE = *pw.p.CreatedGTE
	}
	if pw.p.CreatedLTE != nil {
		w.LTE = *pw.p.CreatedLTE
	}
	pr.mu.Unlock()
	fn := func(objs []listed, at time.Time) error {
		// Objects below the part's lower bound belong to the part split
		// off it: that walker applies them. The rest are claimed under
		// the same lock, so a split from now on cuts below them.
		keep := make([]listed, 0, len(objs))
		pr.mu.Lock()
		gte := pw.p.CreatedGTE
		for _, o := range objs {
			if gte != nil && o.created > 0 && time.Unix(o.created, 0).Before(*gte) {
				continue
			}
			keep = append(keep, o)
		}
		pw.claimed = oldestCreated(keep)
		// Known as soon as the page is in hand, not once it is applied:
		// idle walkers split the rest while this page is written.
		pw.seen += int64(len(keep))
		pw.full = len(keep) == len(objs) && int64(len(objs)) >= pr.s.Client.pageSize
		pr.touched()
		pr.mu.Unlock()
		var c Counts
		var f []Failure
		var err error
		if pr.list == billing.BackfillCustomers {
			err = pr.s.applyCustomers(ctx, keep, at, &c, &f)
		} else {
			err = pr.s.applySubscriptions(ctx, keep, at, &c, &f)
		}
		cmu.Lock()
		counts.add(c)
		*fails = append(*fails, f...)
		cmu.Unlock()
		if err != nil {
			return err
		}
		past := len(keep) < len(objs)
		pr.mu.Lock()
		pw.p.Objects += int64(len(keep))
		pr.objects += int64(len(keep))
		if pw.claimed != nil {
			pw.p.CreatedLTE = pw.claimed
		}
		pw.p.Done = past
		snap := pw.p
		pr.mu.Unlock()
		if err := pr.s.Store.SaveBackfillPartitions(ctx, []billing.BackfillPartition{snap}); err != nil {
			return err
		}
		pr.progress(false)
		if past {
			return errPartDone
		}
		return nil
	}
	if err := pr.s.listPages(ctx, pr.list, w, fn); err != nil && !errors.Is(err, errPartDone) {
		return err
	}
	pr.mu.Lock()
	pw.p.Done, pw.running, pw.full = true, false, false
	snap := pw.p
	pr.touched()
	pr.mu.Unlock()
	return pr.s.Store.SaveBackfillPartitions(ctx, []billing.BackfillPartition{snap})
}

func (c *Counts) add(o Counts) {
	c.Listed += o.Listed
	c.Applied += o.Applied
	c.Unchanged += o.Unchanged
	c.Skipped += o.Skipped
	c.Failed += o.Failed
}

// backfillParts walks one list in parts, resuming the parts stored (or a
// single-cursor run's cursor), Parallel walkers at once. An error of any
// walker stops them all; what was applied stays recorded.
func (s *Syncer) backfillParts(ctx context.Context, list string, cur billing.BackfillCursor, stored []billing.BackfillPartition,
	counts *Counts, fails *[]Failure) error {
	pr := &partitioner{s: s, list: list, start: s.now().UTC().Truncate(time.Second), changed: make(chan struct{})}
	for _, p := range stored {
		pr.parts = append(pr.parts, &partWalk{p: p})
		pr.nextPart = max(pr.nextPart, p.Part+1)
	}
	if len(pr.parts) == 0 {
		// A new run, or one a single-cursor backfill left: one part from
		// its cursor down, split as walkers join.
		p := billing.BackfillPartition{List: list, CreatedLTE: cur.CreatedLTE}
		if err := s.Store.SaveBackfillPartitions(ctx, []billing.BackfillPartition{p}); err != nil {
			return err
		}
		pr.parts, pr.nextPart = []*partWalk{{p: p}}, 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var cmu sync.Mutex
	var wg sync.WaitGroup
	errc := make(chan error, s.Parallel)
	for range s.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				pw, err := pr.take(ctx)
				if err == nil && pw == nil {
					return
				}
				if err == nil {
					err = pr.walk(ctx, pw, counts, fails, &cmu)
				}
				if err != nil {
					errc <- err
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	pr.progress(true)
	for _, pw := range pr.parts {
		if !pw.p.Done {
			return fmt.Errorf("backfill %s: part %d not done", list, pw.p.Part)
		}
	}
	return nil
}

// progress writes one line on Progress at most every second (and at the
// end): objects applied, their rate, parts, and an estimate of the time
// left.
func (pr *partitioner) progress(final bool) {
	w := pr.s.Progress
	if w == nil {
		return
	}
	now := pr.s.now()
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if !final && now.Sub(pr.last) < time.Second {
		return
	}
	pr.last = now
	secs := now.Sub(pr.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(pr.objects) / secs
	}
	var total int64
	var running, done int
	for _, pw := range pr.parts {
		total += pw.p.Objects
		switch {
		case pw.p.Done:
			done++
		case pw.running:
			running++
		}
	}
	eta := "unknown"
	if left, ok := pr.estimateLeft(); final {
		eta = "0s"
	} else if ok && rate > 0 {
		eta = (time.Duration(left/rate) * time.Second).String()
	}
	fmt.Fprintf(w, "%s: %d objects (%.0f/s), parts %d running, %d done, %d waiting; about %s left\n",
		pr.list, total, rate, running, done, len(pr.parts)-running-done, eta)
}

// estimateLeft guesses the objects not listed yet: each unfinished part's
// creation-time range ahead times the density its walk has seen so far
// (the whole run's density for a part not begun). Accounts grow unevenly,
// so it is an estimate that improves as parts are walked. Called with
// pr.mu held.
func (pr *partitioner) estimateLeft() (float64, bool) {
	var objs float64
	var covered time.Duration
	for _, pw := range pr.parts {
		if pw.running || pw.p.Done {
			_, hi := pr.ahead(pw)
			objs += float64(pw.seen)
			covered += pw.from.Sub(hi)
		}
	}
	if covered <= 0 {
		return 0, false
	}
	global := objs / covered.Seconds()
	var left float64
	for _, pw := range pr.parts {
		if pw.p.Done {
			continue
		}
		lo, hi := pr.ahead(pw)
		d, ok := pr.density(pw)
		if !ok {
			d = global
		}
		left += d * max(hi.Sub(lo).Seconds(), 0)
	}
	return left, true
}
