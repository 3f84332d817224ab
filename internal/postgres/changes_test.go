package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// feedProducer renders answers as the entitlement endpoint does.
var feedProducer = postgres.ChangeProducer{
	Render: func(e billing.Entitlement) []byte { return api.RenderEntitlement(e).Body },
	Grace:  72 * time.Hour,
}

// feedEvent is a live subscription event for account's customer cus at at,
// its period starting at feedStart whenever it was sent.
func feedEvent(id, account, cus, sub string, status billing.Status, at time.Time) billing.Event {
	s := subscriptionOf(cus, sub, true, status, 1000, feedStart)
	s.AccountHint = account
	return billing.Event{ID: id, Type: "customer.subscription.updated", Created: at, Livemode: true, Subscription: s}
}

var feedStart = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

func apply(t *testing.T, st *postgres.Store, ev billing.Event) billing.Outcome {
	t.Helper()
	out, err := st.ApplyEvent(context.Background(), ev)
	if err != nil {
		t.Fatalf("apply %s: %v", ev.ID, err)
	}
	return out
}

// produceAll runs producer passes until one finds nothing more to do.
func produceAll(t *testing.T, st *postgres.Store, p postgres.ChangeProducer) int {
	t.Helper()
	total := 0
	for {
		res, err := st.ProduceChanges(context.Background(), p)
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
		total += res.Entries
		if !res.More && !res.Busy {
			return total
		}
		if res.Busy {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// readFeed pages through the feed after cursor after, 7 entries a page.
func readFeed(t *testing.T, st *postgres.Store, after int64) []billing.Change {
	t.Helper()
	var out []billing.Change
	for {
		page, err := st.Changes(context.Background(), after, 7)
		if err != nil {
			t.Fatalf("read feed after %d: %v", after, err)
		}
		out = append(out, page...)
		if len(page) < 7 {
			return out
		}
		after = page[len(page)-1].Seq
	}
}

type answer struct {
	Entitled bool   `json:"entitled"`
	Status   string `json:"status"`
	Livemode bool   `json:"livemode"`
}

func answerOf(t *testing.T, c billing.Change) answer {
	t.Helper()
	var a answer
	if err := json.Unmarshal(c.Entitlement, &a); err != nil {
		t.Fatalf("entry %d: %v: %s", c.Seq, err, c.Entitlement)
	}
	return a
}

// One entry per change of the answer: events that change nothing (the
// same state again, a duplicate delivery, a customer update) make none.
func TestChangeFeedOneEntryPerChange(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	const acct = "acct_feed1"
	steps := []struct {
		name string
		ev   billing.Event
		want []string // statuses of the entries it makes
	}{
		{"Trialing", feedEvent("evt_f1", acct, "cus_F1", "sub_F1", billing.StatusTrialing, t0), []string{"trialing"}},
		{"SameAgain", feedEvent("evt_f2", acct, "cus_F1", "sub_F1", billing.StatusTrialing, t0.Add(time.Minute)), nil},
		{"Duplicate", feedEvent("evt_f2", acct, "cus_F1", "sub_F1", billing.StatusTrialing, t0.Add(time.Minute)), nil},
		{"CustomerUpdate", billing.Event{ID: "evt_f3", Type: "customer.updated", Created: t0.Add(2 * time.Minute), Livemode: true,
			Customer: &billing.Customer{ID: "cus_F1", Livemode: true}}, nil},
		{"Active", feedEvent("evt_f4", acct, "cus_F1", "sub_F1", billing.StatusActive, t0.Add(3*time.Minute)), []string{"active"}},
		{"StaleVersion", feedEvent("evt_f5", acct, "cus_F1", "sub_F1", billing.StatusCanceled, t0.Add(-time.Minute)), nil},
		{"Canceled", feedEvent("evt_f6", acct, "cus_F1", "sub_F1", billing.StatusCanceled, t0.Add(4*time.Minute)), []string{"canceled"}},
	}
	var after int64
	for _, s := range steps {
		apply(t, st, s.ev)
		produceAll(t, st, feedProducer)
		got := readFeed(t, st, after)
		var statuses []string
		for _, c := range got {
			a := answerOf(t, c)
			if c.AccountID != acct || !c.Livemode || !a.Livemode {
				t.Errorf("%s: entry %+v", s.name, c)
			}
			statuses = append(statuses, a.Status)
			after = c.Seq
		}
		if fmt.Sprint(statuses) != fmt.Sprint(s.want) {
			t.Errorf("%s: entries %v, want %v", s.name, statuses, s.want)
		}
	}
}

// Two replicas, the first transaction to start commits last: the feed
// gives the later commit a later cursor, so a reader that already read past
// the first commit's entry still gets it.
func TestChangeFeedOutOfOrderCommits(t *testing.T) {
	t.Parallel()
	rs := replicas(t, 2)
	a, b := rs[0], rs[1]
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	postgres.SetBeforeBatchCommit(a, func() {
		once.Do(func() { close(held); <-release })
	})
	done := make(chan error, 1)
	go func() {
		_, err := a.ApplyEvent(context.Background(), feedEvent("evt_oA", "acct_oooA", "cus_oA", "sub_oA", billing.StatusActive, t0))
		done <- err
	}()
	<-held // A's transaction has written and waits to commit
	apply(t, b, feedEvent("evt_oB", "acct_oooB", "cus_oB", "sub_oB", billing.StatusActive, t0))
	produceAll(t, b, feedProducer)
	first := readFeed(t, b, 0)
	if len(first) != 1 || first[0].AccountID != "acct_oooB" {
		t.Fatalf("before A commits the feed holds %+v, want B's entry alone", first)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	postgres.SetBeforeBatchCommit(a, nil)
	produceAll(t, a, feedProducer)
	next := readFeed(t, a, first[0].Seq)
	if len(next) != 1 || next[0].AccountID != "acct_oooA" || next[0].Seq <= first[0].Seq {
		t.Fatalf("after A commits, entries after cursor %d: %+v, want A's entry", first[0].Seq, next)
	}
	all := readFeed(t, b, 0)
	if len(all) != 2 {
		t.Fatalf("feed holds %d entries, want 2", len(all))
	}
}

// Many accounts, each moved through four answers by events alternating
// between two replicas, while both replicas run producers and a reader
// follows the feed: the reader gets every entry exactly once, in cursor
// order; per account the entries follow the order of its changes, no two
// consecutive ones are equal, and the last is the account's answer now.
func TestChangeFeedReplicasConcurrent(t *testing.T) {
	t.Parallel()
	rs := replicas(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	order := []billing.Status{billing.StatusTrialing, billing.StatusActive, billing.StatusPastDue, billing.StatusCanceled}
	const accounts = 12

	var producers sync.WaitGroup
	var writing atomic.Bool
	writing.Store(true)
	for _, st := range rs {
		producers.Add(1)
		go func() {
			defer producers.Done()
			for ctx.Err() == nil {
				if _, err := st.ProduceChanges(ctx, feedProducer); err != nil && ctx.Err() == nil {
					t.Errorf("produce: %v", err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	var seen []billing.Change
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		var after int64
		for {
			page, err := rs[1].Changes(ctx, after, 5)
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("read: %v", err)
				}
				return
			}
			seen = append(seen, page...)
			if len(page) > 0 {
				after = page[len(page)-1].Seq
			} else if !writing.Load() {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var writers sync.WaitGroup
	for i := range accounts {
		writers.Add(1)
		go func() {
			defer writers.Done()
			acct, cus, sub := fmt.Sprintf("acct_conc%02d", i), fmt.Sprintf("cus_conc%02d", i), fmt.Sprintf("sub_conc%02d", i)
			for k, status := range order {
				ev := feedEvent(fmt.Sprintf("evt_conc%02d_%d", i, k), acct, cus, sub, status, t0.Add(time.Duration(k)*time.Minute))
				if _, err := rs[(i+k)%2].ApplyEvent(ctx, ev); err != nil {
					t.Errorf("apply: %v", err)
				}
			}
		}()
	}
	writers.Wait()
	// Let the producers drain what the writers left, then stop them and
	// the reader.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if countRows(t, rs[0], `SELECT count(*) FROM entitlement_dirty`) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("producers never drained the dirty accounts")
		}
	}
	cancel()
	producers.Wait()
	produceAll(t, rs[0], feedProducer)
	writing.Store(false)
	<-readerDone
	// The reader may have stopped early on cancel: finish from its cursor.
	var after int64
	if len(seen) > 0 {
		after = seen[len(seen)-1].Seq
	}
	seen = append(seen, readFeed(t, rs[0], after)...)

	all := readFeed(t, rs[0], 0)
	if fmt.Sprint(seqs(seen)) != fmt.Sprint(seqs(all)) {
		t.Fatalf("the concurrent reader saw %v\nthe feed holds %v", seqs(seen), seqs(all))
	}
	perAccount := map[string][]billing.Change{}
	for i, c := range all {
		if i > 0 && c.Seq <= all[i-1].Seq {
			t.Fatalf("cursors out of order: %d after %d", c.Seq, all[i-1].Seq)
		}
		perAccount[c.AccountID] = append(perAccount[c.AccountID], c)
	}
	if len(perAccount) != accounts {
		t.Fatalf("%d accounts in the feed, want %d", len(perAccount), accounts)
	}
	for acct, cs := range perAccount {
		last := -1
		for j, c := range cs {
			idx := slices.Index(order, billing.Status(answerOf(t, c).Status))
			if idx <= last {
				t.Errorf("%s: entries %v are not in the order of its changes", acct, statusesOf(t, cs))
			}
			last = idx
			if j > 0 && string(c.Entitlement) == string(cs[j-1].Entitlement) {
				t.Errorf("%s: two consecutive equal entries", acct)
			}
		}
		if got := answerOf(t, cs[len(cs)-1]).Status; got != string(billing.StatusCanceled) {
			t.Errorf("%s: last entry %s, want canceled (the answer now)", acct, got)
		}
	}
}

func seqs(cs []billing.Change) []int64 {
	out := make([]int64, len(cs))
	for i, c := range cs {
		out[i] = c.Seq
	}
	return out
}

func statusesOf(t *testing.T, cs []billing.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, answerOf(t, c).Status)
	}
	return out
}

// Entries older than the retention are purged; a cursor before them is
// expired (410 at the API), one at or after the horizon reads on.
func TestChangeFeedCursorExpired(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i, status := range []billing.Status{billing.StatusTrialing, billing.StatusActive, billing.StatusCanceled} {
		apply(t, st, feedEvent(fmt.Sprintf("evt_exp%d", i), "acct_exp", "cus_exp", "sub_exp", status, t0.Add(time.Duration(i)*time.Minute)))
		produceAll(t, st, feedProducer)
	}
	all := readFeed(t, st, 0)
	if len(all) != 3 {
		t.Fatalf("%d entries, want 3", len(all))
	}
	if _, err := st.DB().ExecContext(ctx, `UPDATE entitlement_changes SET at = now() - interval '8 days' WHERE seq <= $1`, all[1].Seq); err != nil {
		t.Fatal(err)
	}
	n, err := st.PurgeChanges(ctx, 7*24*time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("purge: %d, %v; want 2 entries", n, err)
	}
	tests := []struct {
		name    string
		after   int64
		want    []int64
		wantErr error
	}{
		{"ErrBeforeHorizon", all[0].Seq, nil, billing.ErrCursorExpired},
		{"OKAtHorizon", all[1].Seq, []int64{all[2].Seq}, nil},
		{"OKNoCursor", 0, []int64{all[2].Seq}, nil},
		{"OKAtEnd", all[2].Seq, []int64{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := st.Changes(ctx, tt.after, 10)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && fmt.Sprint(seqs(got)) != fmt.Sprint(tt.want) {
				t.Errorf("entries %v, want %v", seqs(got), tt.want)
			}
		})
	}
}

// Erasing an account deletes its entries, feed state and undelivered
// webhooks, and the producer writes nothing more about it.
func TestChangeFeedErasure(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	p := feedProducer
	p.Outbound = true
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	apply(t, st, feedEvent("evt_er1", "acct_erfeed", "cus_erfeed", "sub_erfeed", billing.StatusActive, t0))
	apply(t, st, feedEvent("evt_er2", "acct_keep", "cus_keep", "sub_keep", billing.StatusActive, t0))
	if n := produceAll(t, st, p); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
	if got := countRows(t, st, `SELECT count(*) FROM outbox WHERE kind = 'app_webhook'`); got != 2 {
		t.Fatalf("%d app webhook rows, want 2", got)
	}
	erase(t, st, billing.ErasureRequest{AccountID: "acct_erfeed"})
	if n := produceAll(t, st, p); n != 0 {
		t.Errorf("the producer wrote %d entries after the erasure", n)
	}
	for _, q := range []string{
		`SELECT count(*) FROM entitlement_changes WHERE account_id = 'acct_erfeed'`,
		`SELECT count(*) FROM entitlement_feed_state WHERE account_id = 'acct_erfeed'`,
		`SELECT count(*) FROM entitlement_dirty`,
		`SELECT count(*) FROM outbox WHERE kind = 'app_webhook' AND ordering_key = 'app:' || md5('acct_erfeed')`,
	} {
		if n := countRows(t, st, q); n != 0 {
			t.Errorf("%s: %d rows left", q, n)
		}
	}
	if n := countRows(t, st, `SELECT count(*) FROM entitlement_changes WHERE account_id = 'acct_keep'`); n != 1 {
		t.Errorf("the other account's entries: %d, want 1", n)
	}
}

// An answer that changes by time alone (a past_due grace period ending)
// gets its entry when that time comes, with no event.
func TestChangeFeedRecheck(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	now := time.Now().Truncate(time.Second)
	ev := feedEvent("evt_rc1", "acct_recheck", "cus_rc", "sub_rc", billing.StatusPastDue, now.Add(-time.Minute))
	start := now.Add(-time.Hour)
	ev.Subscription.CurrentPeriodStart = &start
	apply(t, st, ev)
	if n := produceAll(t, st, feedProducer); n != 1 {
		t.Fatalf("%d entries, want 1", n)
	}
	later := feedProducer
	later.Now = func() time.Time { return now.Add(70 * time.Hour) }
	if n := produceAll(t, st, later); n != 0 {
		t.Fatalf("%d entries before the grace period ended, want 0", n)
	}
	later.Now = func() time.Time { return now.Add(73 * time.Hour) }
	if n := produceAll(t, st, later); n != 1 {
		t.Fatalf("%d entries after the grace period ended, want 1", n)
	}
	all := readFeed(t, st, 0)
	if a := answerOf(t, all[1]); a.Entitled || a.Status != "past_due" {
		t.Errorf("after the grace period: %+v, want not entitled", a)
	}
	if n := produceAll(t, st, later); n != 0 {
		t.Errorf("%d more entries, want 0", n)
	}
}

// The all-accounts mark makes the next passes recompute every account: a
// change no per-account mark names (here, written behind the event path's
// back) still reaches the feed.
func TestChangeFeedAllAccountsMark(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 3 {
		apply(t, st, feedEvent(fmt.Sprintf("evt_all%d", i), fmt.Sprintf("acct_all%d", i), fmt.Sprintf("cus_all%d", i), fmt.Sprintf("sub_all%d", i),
			billing.StatusActive, t0))
	}
	if n := produceAll(t, st, feedProducer); n != 3 {
		t.Fatalf("%d entries, want 3", n)
	}
	if _, err := st.DB().ExecContext(ctx, `UPDATE subscriptions SET status = 'canceled' WHERE stripe_subscription_id IN ('sub_all0', 'sub_all2')`); err != nil {
		t.Fatal(err)
	}
	if n := produceAll(t, st, feedProducer); n != 0 {
		t.Fatalf("%d entries without a mark, want 0", n)
	}
	if err := postgres.MarkAllAccountsDirty(ctx, st.DB()); err != nil {
		t.Fatal(err)
	}
	p := feedProducer
	p.Batch = 2 // the expansion spans passes
	if n := produceAll(t, st, p); n != 2 {
		t.Fatalf("%d entries after the all-accounts mark, want 2 (the changed accounts)", n)
	}
	if n := countRows(t, st, `SELECT count(*) FROM entitlement_dirty`); n != 0 {
		t.Errorf("%d dirty rows left", n)
	}
}
