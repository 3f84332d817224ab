package stripeapi

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/webhooks"
)

// ReconcileOptions configures one reconcile run.
type ReconcileOptions struct {
	// Since, when positive, limits the run to subscriptions Stripe created
	// in the last Since (a cheap check of recent sign-ups); deleted
	// customers are then looked for only among their customers. Zero: all.
	Since time.Duration
	// Fix applies Stripe's truth for every fixable drift, through the
	// webhook apply path (so revenue movements and outbox rows follow).
	Fix bool
}

// ReconcileReport is the result of a reconcile run. Every subscription checked is
// counted exactly once: Checked = Listed + Fetched = InStep + missing +
// changed + extra (by kind in Drift) + len(Failures) + Erased.
type ReconcileReport struct {
	Checked  int // subscriptions compared: Listed + Fetched
	Listed   int // distinct subscriptions Stripe listed
	Fetched  int // stored subscriptions Stripe did not list, asked for by ID
	InStep   int // checked and equal to what is stored
	Drift    []billing.Drift
	Failures []Failure // Stripe objects that could not be decoded
	Erased   int       // Stripe subscriptions of erased accounts: not drift
	Fix      bool
}

// Differences counts what a run found wrong: drift and objects that could
// not be decoded (so could not be compared).
func (r ReconcileReport) Differences() int { return len(r.Drift) + len(r.Failures) }

// Fixed counts the drift repaired.
func (r ReconcileReport) Fixed() int {
	n := 0
	for _, d := range r.Drift {
		if d.Fixed {
			n++
		}
	}
	return n
}

// Unfixed lists drift a --fix run could not repair.
func (r ReconcileReport) Unfixed() []billing.Drift {
	var out []billing.Drift
	for _, d := range r.Drift {
		if !d.Fixed {
			out = append(out, d)
		}
	}
	return out
}

// ByKind counts drift per kind.
func (r ReconcileReport) ByKind() map[billing.DriftKind]int {
	out := map[billing.DriftKind]int{}
	for _, d := range r.Drift {
		out[d.Kind]++
	}
	return out
}

// fetched is Stripe's copy of a subscription and when Stripe answered.
type fetched struct {
	sub billing.Subscription
	at  time.Time
}

// Reconcile compares stored subscriptions (of the key's mode) with
// Stripe's and reports drift: missing, extra, changed, and customers
// Stripe deleted or no longer knows (404). With opt.Fix it applies
// Stripe's truth for each through ApplyEvent, one transaction per object:
// a failure is recorded on its drift row and the run goes on, so what
// succeeded stays. Extra subscriptions Stripe has no record of cannot be
// fixed from Stripe and are only reported.
func (s *Syncer) Reconcile(ctx context.Context, opt ReconcileOptions) (ReconcileReport, error) {
	rep := ReconcileReport{Fix: opt.Fix}
	release, ok, err := s.Store.TryStripeSyncLock(ctx)
	if err != nil {
		return rep, err
	}
	if !ok {
		return rep, ErrBusy
	}
	defer release()

	live := s.Client.Livemode()
	var since *time.Time
	var w Window
	if opt.Since > 0 {
		t := s.now().Add(-opt.Since).UTC().Truncate(time.Second)
		since, w.GTE = &t, t
	}
	stored, err := s.Store.ReconcileSubscriptions(ctx, live, since)
	if err != nil {
		return rep, err
	}
	theirs := map[string]fetched{}
	undecodable := map[string]bool{}
	err = s.Client.ListSubscriptions(ctx, w, func(p Page) error {
		for _, raw := range p.Objects {
			// A page boundary can list an object twice (objects created
			// while listing): count and keep it once.
			sub, err := webhooks.DecodeSubscription(raw)
			if err != nil {
				if id := rawID(raw); !undecodable[id] {
					undecodable[id] = true
					rep.Failures = append(rep.Failures, failure("subscription", id, err))
				}
				continue
			}
			theirs[sub.ID] = fetched{sub, p.At}
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	rep.Listed = len(theirs) + len(undecodable)
	drift, err := s.withoutErased(ctx, billing.CompareSubscriptions(slices.Collect(maps.Values(stored)), subsOf(theirs)), &rep)
	if err != nil {
		return rep, err
	}
	drifting := map[string]bool{}
	for _, d := range drift {
		drifting[d.SubscriptionID] = true
	}
	for id := range theirs {
		if _, ok := stored[id]; ok && !drifting[id] {
			rep.InStep++
		}
	}

	// An extra subscription may simply be outside the list (Stripe lists
	// what it lists); ask for it by ID before calling it extra, and ask
	// about its customer when Stripe has no record of it.
	var kept []billing.Drift
	suspects := map[string]bool{}
	for _, d := range drift {
		if d.Kind != billing.DriftExtra {
			kept = append(kept, d)
			continue
		}
		if undecodable[d.SubscriptionID] {
			continue // listed, but unreadable: reported once, as undecodable
		}
		// Stored but not listed: asked for by ID, and counted as checked
		// (the listing alone would leave it out of the total).
		obj, err := s.Client.GetSubscription(ctx, d.SubscriptionID)
		if err != nil {
			return rep, fmt.Errorf("reconcile: %w", err)
		}
		rep.Fetched++
		if !obj.Found {
			suspects[d.CustomerID] = true
			kept = append(kept, d)
			continue
		}
		sub, err := webhooks.DecodeSubscription(obj.Raw)
		if err != nil {
			rep.Failures = append(rep.Failures, failure("subscription", d.SubscriptionID, err))
			continue
		}
		theirs[sub.ID] = fetched{sub, obj.At}
		if diffs := billing.SubscriptionDiff(stored[sub.ID], sub); diffs != nil {
			kept = append(kept, billing.Drift{Kind: billing.DriftChanged, CustomerID: sub.CustomerID, SubscriptionID: sub.ID, Diffs: diffs})
		} else {
			rep.InStep++
		}
	}
	rep.Checked = rep.Listed + rep.Fetched
	drift = kept

	deleted, err := s.deletedCustomers(ctx, live, opt.Since > 0, suspects)
	if err != nil {
		return rep, err
	}
	drift = append(drift, deleted...)
	billing.SortDrift(drift)

	if opt.Fix {
		for i := range drift {
			s.fix(ctx, &drift[i], theirs)
		}
	}
	rep.Drift = drift
	s.log().Info("reconcile done", "checked", rep.Checked, "drift", len(drift), "fixed", rep.Fixed(), "failures", len(rep.Failures))
	return rep, nil
}

// withoutErased drops missing subscriptions of erased accounts: Stripe
// keeps them, billingd never stores them again (design invariant 4).
func (s *Syncer) withoutErased(ctx context.Context, drift []billing.Drift, rep *ReconcileReport) ([]billing.Drift, error) {
	var ids []string
	for _, d := range drift {
		if d.Kind == billing.DriftMissing {
			ids = append(ids, d.SubscriptionID, d.CustomerID)
		}
	}
	if len(ids) == 0 {
		return drift, nil
	}
	dead, err := s.Store.Tombstoned(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := drift[:0]
	for _, d := range drift {
		if d.Kind == billing.DriftMissing && (dead[d.SubscriptionID] || dead[d.CustomerID]) {
			rep.Erased++
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

func subsOf(m map[string]fetched) []billing.Subscription {
	out := make([]billing.Subscription, 0, len(m))
	for _, f := range m {
		out = append(out, f.sub)
	}
	return out
}

// deletedCustomers finds stored, not deleted customers that Stripe deleted
// or answers 404 for. A full run asks about every stored customer Stripe
// does not list (Stripe leaves deleted ones out of lists); a --since run
// only about the customers of extra subscriptions (suspects).
func (s *Syncer) deletedCustomers(ctx context.Context, live, partial bool, suspects map[string]bool) ([]billing.Drift, error) {
	storedCusts, err := s.Store.ReconcileCustomers(ctx, live)
	if err != nil {
		return nil, err
	}
	ask := map[string]bool{}
	if partial {
		for id := range suspects {
			if _, ok := storedCusts[id]; ok {
				ask[id] = true
			}
		}
	} else {
		for id := range storedCusts {
			ask[id] = true
		}
		err := s.Client.ListCustomers(ctx, Window{}, func(p Page) error {
			for _, raw := range p.Objects {
				delete(ask, rawID(raw))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reconcile: %w", err)
		}
	}
	var out []billing.Drift
	for _, id := range slices.Sorted(maps.Keys(ask)) {
		obj, err := s.Client.GetCustomer(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("reconcile: %w", err)
		}
		why := "404"
		if obj.Found {
			c, err := webhooks.DecodeCustomer(obj.Raw)
			if err != nil || !c.Deleted {
				continue // listed late or undecodable: not evidence of deletion
			}
			why = "deleted"
		}
		out = append(out, billing.Drift{Kind: billing.DriftCustomerDeleted, CustomerID: id,
			Diffs: []billing.Difference{{Field: "customer", Stored: "live", Stripe: why}}})
	}
	return out, nil
}

// fix applies Stripe's truth for one drift row and records the result on
// it.
func (s *Syncer) fix(ctx context.Context, d *billing.Drift, theirs map[string]fetched) {
	var ev billing.Event
	switch d.Kind {
	case billing.DriftMissing, billing.DriftChanged:
		f := theirs[d.SubscriptionID]
		ev = subscriptionEvent(f.sub, f.at)
	case billing.DriftCustomerDeleted:
		c := billing.Customer{ID: d.CustomerID, Livemode: s.Client.Livemode(), Deleted: true}
		ev = customerEvent(c, s.now().UTC())
	default:
		d.Err = "Stripe has no such subscription: nothing to apply (erase or investigate by hand)"
		return
	}
	out, err := s.Store.ApplyEvent(ctx, ev)
	switch {
	case err != nil:
		d.Err = err.Error()
	case out == billing.OutcomeStale:
		// An event newer than Stripe's answer arrived meanwhile, or the
		// stored version is from the same second as the answer.
		d.Err = "stored state is at least as new as Stripe's answer; kept (run again to recheck)"
	case out == billing.OutcomeTombstoned:
		d.Err = "erased: never stored again"
	default:
		d.Fixed = true
	}
}

// WriteTable prints the report as a table, one drift per line, and a
// summary line.
func (r ReconcileReport) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tCUSTOMER\tSUBSCRIPTION\tDIFFERENCE\tFIX")
	for _, d := range r.Drift {
		diffs := make([]string, len(d.Diffs))
		for i, x := range d.Diffs {
			diffs[i] = x.String()
		}
		fix := "-"
		switch {
		case d.Fixed:
			fix = "fixed"
		case d.Err != "":
			fix = "FAILED: " + d.Err
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Kind, d.CustomerID, dash(d.SubscriptionID), strings.Join(diffs, "; "), fix)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(tw, "undecodable\t-\t%s\t%s\t-\n", f.ID, f.Err)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	by := r.ByKind()
	_, err := fmt.Fprintf(w, "checked %d subscriptions (%d listed by Stripe, %d asked for by ID): %d in step, %d missing, %d changed, %d extra, %d undecodable, %d of erased accounts (ignored); %d customers deleted; %d fixed\n",
		r.Checked, r.Listed, r.Fetched, r.InStep, by[billing.DriftMissing], by[billing.DriftChanged], by[billing.DriftExtra],
		len(r.Failures), r.Erased, by[billing.DriftCustomerDeleted], r.Fixed())
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
