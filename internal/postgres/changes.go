package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// The change feed (GET /v1/changes) has one entry per change of an
// account's entitlement answer. Three steps keep it both cheap for the
// event path and free of gaps:
//
//  1. Every transaction that may change what an account is entitled to
//     (notifyAccountChange, the event path's qReplaceLedgers) also inserts
//     the account into entitlement_dirty: an ordinary insert beside its
//     cache invalidation, in the same statement.
//  2. A producer (ProduceChanges, run by every replica; one at a time holds
//     the feed lock) deletes the dirty rows it can see, recomputes those
//     accounts' answers in both modes, renders them with the API's renderer
//     and appends an entry for each answer that differs from the last one
//     it put in the feed (entitlement_feed_state). Events that change
//     nothing make no entry.
//  3. Readers page through entitlement_changes by seq.
//
// Why nothing is skipped when transactions commit out of order: this is the
// problem the cache-invalidation feed solves with transaction-ID windows
// (invalidations.go): a reader must never move past a position that a
// later commit fills in. Here the dirty rows are a queue that is consumed,
// not read by position: a row becomes visible when its transaction commits,
// whenever that is, and stays until a producer's committed delete takes
// it. Positions in the public feed (seq) are handed out only by the one
// producer that holds the feed lock, whose transaction commits before the
// next producer's can take the lock: seq order is commit order, and a
// reader that saw seq N never later finds an entry below N. (Within one
// pass, entries of different accounts follow the order their dirty rows
// were written.) Per account,
// entries follow the order of the answers' commits, because passes run one
// after another and each reads state committed after the previous one.
//
// Intermediate answers: an answer is computed from the account's state as
// committed when the pass runs, so two changes of one account that commit
// between two passes (one poll, 100 ms by default) give one entry with the
// later answer, not two; the answer the account ends at is never skipped.

// ChangeProducer is what a producer pass needs besides the database.
type ChangeProducer struct {
	// Render renders an entitlement as the API answers it
	// (api.RenderEntitlement's body): the feed stores and compares these
	// bytes, so what the feed says is what the endpoint says.
	Render func(billing.Entitlement) []byte
	// Grace is ENTITLEMENT_GRACE_PERIOD.
	Grace time.Duration
	// Outbound also queues an app webhook (outbox kind app_webhook) per
	// entry, in the entry's transaction.
	Outbound bool
	// Batch is how many dirty rows (and due rechecks) one pass takes; 0: 500.
	Batch int
	// Now is the clock answers are computed at; nil: time.Now.
	Now func() time.Time
}

// ProduceResult is what one pass did.
type ProduceResult struct {
	Entries int  // feed entries appended
	More    bool // the pass took a full batch: run another at once
	Busy    bool // another producer holds the feed lock
}

// feedLockKey is the transaction-level advisory lock a producer pass holds:
// one pass at a time across replicas.
const feedLockKey = 0x66656564_5f6c6f63 // "feed_loc"

// ProduceChanges runs one producer pass (see the comment at the top of
// this file) in one transaction.
func (s *Store) ProduceChanges(ctx context.Context, p ChangeProducer) (ProduceResult, error) {
	if p.Render == nil {
		return ProduceResult{}, fmt.Errorf("produce changes: no renderer: %w", billing.ErrInvalid)
	}
	if p.Batch <= 0 {
		p.Batch = 500
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	ring, err := s.erasureRing(ctx)
	if err != nil {
		return ProduceResult{}, fmt.Errorf("produce changes: %w", err)
	}
	var res ProduceResult
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var got bool
		if err := tx.GetContext(ctx, &got, `SELECT pg_try_advisory_xact_lock($1)`, int64(feedLockKey)); err != nil {
			return fmt.Errorf("take feed lock: %w", translate(err))
		}
		if !got {
			res.Busy = true
			return nil
		}
		at := now()
		accounts, ids, more, err := takeDirty(ctx, tx, p.Batch, at)
		if err != nil {
			return err
		}
		res.More = more
		if len(accounts) == 0 {
			return nil
		}
		n, err := produce(ctx, tx, ring, p, at, accounts, ids)
		res.Entries = n
		return err
	})
	if err != nil {
		return ProduceResult{}, fmt.Errorf("produce changes: %w", err)
	}
	return res, nil
}

// qTakeDirty reads up to $1 dirty rows and picks up to $1 accounts whose
// answer time alone changes by $2 (recheck_at). Accounts come in the order
// of their first dirty row (the order their transactions wrote, the closest
// to commit order PostgreSQL tells without commit timestamps), so within a
// pass, too, an earlier change tends to get the lower cursor; rechecks come
// last. An all-accounts mark committed after this pass's expansion
// (qExpandAll) is left for the next pass to expand, not taken as an
// account. It locks nothing: the rows
// are deleted after the accounts' locks are held (qFeedErased), so a pass
// never holds a row an erasure deletes while it waits for that erasure.
const qTakeDirty = `
WITH d AS (
    SELECT id, account_id FROM entitlement_dirty WHERE account_id <> '*' ORDER BY id LIMIT $1
), r AS (
    SELECT account_id FROM entitlement_feed_state
    WHERE recheck_at <= $2
    ORDER BY recheck_at LIMIT $1
)
SELECT (SELECT count(*) FROM d) AS dirty, (SELECT count(*) FROM r) AS due,
       ARRAY(SELECT id FROM d) AS ids,
       ARRAY(SELECT account_id FROM (
                 SELECT account_id, min(id) AS first FROM d GROUP BY account_id
                 UNION ALL
                 SELECT DISTINCT account_id, NULL::bigint FROM r WHERE account_id NOT IN (SELECT account_id FROM d)) AS x
             ORDER BY first NULLS LAST, account_id) AS accounts`

// AllAccounts, as an entitlement_dirty account ID, marks every account
// dirty: a change that may change every answer at once (the features
// catalog every answer reads: CatalogPut) inserts it, and the next pass expands it into one
// row per account the feed knows or that has a linked customer. It is not
// a valid account ID (billing.ValidAccountID), so it names no account.
const AllAccounts = "*"

// qExpandAll replaces the all-accounts marks with a row per account.
const qExpandAll = `
WITH m AS (DELETE FROM entitlement_dirty WHERE account_id = '*' RETURNING 1)
INSERT INTO entitlement_dirty (account_id)
SELECT a FROM (SELECT DISTINCT account_id AS a FROM customers WHERE account_id IS NOT NULL
               UNION SELECT account_id FROM entitlement_feed_state) AS x
WHERE EXISTS (SELECT 1 FROM m)`

// ClearChangeMarks deletes the change feed marks with IDs up to upTo (the
// value it returned last time; 0 deletes nothing) and returns the highest
// mark ID now: a replica without the feed calls it every few minutes, so
// only marks at least one interval old go (those of a replica running the
// feed are consumed long before).
func (s *Store) ClearChangeMarks(ctx context.Context, upTo int64) (int64, error) {
	const q = `
WITH d AS (DELETE FROM entitlement_dirty WHERE id <= $1)
SELECT coalesce(max(id), 0) FROM entitlement_dirty`
	var top int64
	if err := s.db.GetContext(ctx, &top, q, upTo); err != nil {
		return 0, fmt.Errorf("clear change marks: %w", translate(err))
	}
	return top, nil
}

// MarkAllAccounts marks every account for the producer's next pass in its
// own transaction (a feed starting after being off).
func (s *Store) MarkAllAccounts(ctx context.Context) error {
	if err := MarkAllAccountsDirty(ctx, s.db); err != nil {
		return err
	}
	return nil
}

// MarkAllAccountsDirty marks every account for the producer's next pass
// (AllAccounts), in the caller's transaction.
func MarkAllAccountsDirty(ctx context.Context, tx sqlx.ExecerContext) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO entitlement_dirty (account_id) VALUES ('*')`); err != nil {
		return fmt.Errorf("mark all accounts dirty: %w", translate(err))
	}
	return nil
}

func takeDirty(ctx context.Context, tx *sqlx.Tx, batch int, now time.Time) ([]string, []int64, bool, error) {
	// The expansion runs under the feed lock, so one pass expands a mark
	// once; a mark committed after this statement waits for the next pass.
	if _, err := tx.ExecContext(ctx, qExpandAll); err != nil {
		return nil, nil, false, fmt.Errorf("expand all-accounts mark: %w", translate(err))
	}
	var r struct {
		Dirty    int            `db:"dirty"`
		Due      int            `db:"due"`
		IDs      pq.Int64Array  `db:"ids"`
		Accounts pq.StringArray `db:"accounts"`
	}
	if err := tx.QueryRowxContext(ctx, qTakeDirty, batch, now).StructScan(&r); err != nil {
		return nil, nil, false, fmt.Errorf("take dirty accounts: %w", translate(err))
	}
	return r.Accounts, r.IDs, r.Dirty >= batch || r.Due >= batch, nil
}

const (
	// qFeedErased consumes the pass's dirty rows ($3) and finds which of
	// its accounts were erased.
	qFeedErased = `
WITH del AS (DELETE FROM entitlement_dirty WHERE id = ANY($3::bigint[]))
SELECT DISTINCT a.acct FROM unnest($1::bytea[], $2::text[]) AS a(hmac, acct)
WHERE EXISTS (SELECT 1 FROM account_tombstones WHERE subject_hmac = a.hmac)`
	qFeedState = `
SELECT account_id, livemode, answer_hash, recheck_at FROM entitlement_feed_state WHERE account_id = ANY($1)`
	// qFeedWrite stores the new states ($1..$4), appends the entries
	// ($5..$7, in the order given) and, when $8, an app webhook outbox row
	// per entry. The ordering key names the account by its MD5 (the outbox
	// caps keys at 80 characters; account IDs may have 128).
	qFeedWrite = `
WITH st AS (
    INSERT INTO entitlement_feed_state (account_id, livemode, answer_hash, recheck_at)
    SELECT u.a, u.l, u.h, NULLIF(u.r, '')::timestamptz
    FROM unnest($1::text[], $2::boolean[], $3::bytea[], $4::text[]) AS u(a, l, h, r)
    ON CONFLICT (account_id, livemode) DO UPDATE SET answer_hash = EXCLUDED.answer_hash, recheck_at = EXCLUDED.recheck_at
), ch AS (
    INSERT INTO entitlement_changes (account_id, livemode, entitlement)
    SELECT u.a, u.l, u.e FROM unnest($5::text[], $6::boolean[], $7::text[]) WITH ORDINALITY AS u(a, l, e, n)
    ORDER BY u.n
    RETURNING seq, account_id
)
INSERT INTO outbox (kind, ordering_key, action, payload)
SELECT 'app_webhook', 'app:' || md5(ch.account_id), 'entitlement.changed', jsonb_build_object('seq', ch.seq)
FROM ch WHERE $8
ORDER BY ch.seq`
)

type feedKey struct {
	account string
	live    bool
}

type feedState struct {
	hash    []byte
	recheck *time.Time
}

// produce recomputes accounts' answers and writes what changed. The
// accounts' shared locks are taken first (as every writer about an account
// does, checkTombstones): an erasure running meanwhile either committed
// before the reads below, which then see its tombstone and skip the
// account, or waits until this pass committed and deletes what it wrote.
func produce(ctx context.Context, tx *sqlx.Tx, ring billing.KeyRing, p ChangeProducer, now time.Time, accounts []string, dirtyIDs []int64) (int, error) {
	keys := sortedLockKeys(nil, accounts...)
	if _, err := tx.ExecContext(ctx, qTombstoneLock, subjectLockSpace, pq.Array(keys)); err != nil {
		return 0, fmt.Errorf("lock feed accounts: %w", translate(err))
	}
	hashes, of := [][]byte{}, []string{}
	for _, a := range accounts {
		for _, h := range ringHashes(ring, a) {
			hashes, of = append(hashes, h), append(of, a)
		}
	}
	var erasedList []string
	if err := tx.SelectContext(ctx, &erasedList, qFeedErased, pq.ByteaArray(hashes), pq.Array(of), pq.Array(dirtyIDs)); err != nil {
		return 0, fmt.Errorf("read erased feed accounts: %w", translate(err))
	}
	erased := map[string]bool{}
	for _, a := range erasedList {
		erased[a] = true
	}
	answers, none, err := feedAnswers(ctx, tx, p, now, accounts)
	if err != nil {
		return 0, err
	}
	var stateRows []struct {
		AccountID string     `db:"account_id"`
		Livemode  bool       `db:"livemode"`
		Hash      []byte     `db:"answer_hash"`
		RecheckAt *time.Time `db:"recheck_at"`
	}
	if err := tx.SelectContext(ctx, &stateRows, qFeedState, pq.Array(accounts)); err != nil {
		return 0, fmt.Errorf("read feed state: %w", translate(err))
	}
	state := map[feedKey]feedState{}
	for _, r := range stateRows {
		state[feedKey{r.AccountID, r.Livemode}] = feedState{r.Hash, r.RecheckAt}
	}
	var (
		sAcct, sHash = []string{}, [][]byte{}
		sLive        = []bool{}
		sRecheck     = []string{}
		eAcct, eBody = []string{}, []string{}
		eLive        = []bool{}
	)
	for _, a := range accounts {
		if erased[a] {
			continue
		}
		for _, live := range []bool{true, false} {
			ans := answers[feedKey{a, live}]
			body := bytes.TrimSpace(ans.body)
			sum := sha256.Sum256(body)
			var recheck *time.Time
			if !ans.recheckAt.IsZero() {
				r := ans.recheckAt.UTC()
				recheck = &r
			}
			old, known := state[feedKey{a, live}]
			prev := none[live]
			if known {
				prev = old.hash
			}
			changed := !bytes.Equal(sum[:], prev)
			if changed {
				eAcct, eLive, eBody = append(eAcct, a), append(eLive, live), append(eBody, string(body))
			}
			if changed || (known && !sameTime(old.recheck, recheck)) || (!known && recheck != nil) {
				r := ""
				if recheck != nil {
					r = recheck.Format(time.RFC3339Nano)
				}
				sAcct, sLive, sHash, sRecheck = append(sAcct, a), append(sLive, live), append(sHash, sum[:]), append(sRecheck, r)
			}
		}
	}
	if len(sAcct) == 0 && len(eAcct) == 0 {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, qFeedWrite, pq.Array(sAcct), pq.Array(sLive), pq.ByteaArray(sHash), pq.Array(sRecheck),
		pq.Array(eAcct), pq.Array(eLive), pq.Array(eBody), p.Outbound); err != nil {
		return 0, fmt.Errorf("write feed entries: %w", translate(err))
	}
	return len(eAcct), nil
}

// feedAnswer is one account's rendered answer in one mode and when time
// alone changes it next.
type feedAnswer struct {
	body      []byte
	recheckAt time.Time
}

// feedAnswers computes the answers of accounts in both modes at now, from
// the state committed when it runs (after the dirty rows were read), and
// the hashes of the answer of an account with nothing billingd knows of,
// which is what the feed assumes of an account it never reported on. This
// is the one place that decides what an answer is: it computes it exactly
// as the entitlement cache does (internal/entcache's load): the inputs
// EntitlementInputs reads (feedInputs, the same SQL) with the catalog,
// resolved by billing.ResolveEntitlement (a customer on a test clock judged
// at the clock's time) and rendered with p.Render
// (api.RenderEntitlement), so entries always equal what the endpoint
// answers (TestChangeFeedSameAnswerAsEndpoint, TestChangesEndpoint).
func feedAnswers(ctx context.Context, tx *sqlx.Tx, p ChangeProducer, now time.Time, accounts []string) (map[feedKey]feedAnswer, map[bool][]byte, error) {
	inputs, err := feedInputs(ctx, tx, accounts)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[feedKey]feedAnswer, 2*len(accounts))
	var cat *billing.Catalog
	for _, a := range accounts {
		for _, live := range []bool{true, false} {
			in := inputs[feedKey{a, live}]
			cat = in.Catalog
			e := billing.ResolveEntitlement(in, live, now, p.Grace)
			out[feedKey{a, live}] = feedAnswer{body: p.Render(e), recheckAt: e.RecheckAt}
		}
	}
	none := map[bool][]byte{}
	for _, live := range []bool{true, false} {
		h := sha256.Sum256(bytes.TrimSpace(p.Render(billing.ResolveEntitlement(billing.ResolveInput{Catalog: cat}, live, now, p.Grace))))
		none[live] = h[:]
	}
	return out, none, nil
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// Changes returns up to limit feed entries after the cursor position after
// (0: from the oldest kept), in feed order. A position older than the
// purged ones wraps billing.ErrCursorExpired: entries after it are gone.
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]billing.Change, error) {
	var out []billing.Change
	err := s.inReadTx(ctx, func(tx *sqlx.Tx) error {
		var purged int64
		if err := tx.GetContext(ctx, &purged, `SELECT purged_through FROM entitlement_feed`); err != nil {
			return fmt.Errorf("read feed horizon: %w", translate(err))
		}
		if after > 0 && after < purged {
			return fmt.Errorf("read changes after %d: entries up to %d were purged: %w", after, purged, billing.ErrCursorExpired)
		}
		var err error
		out, err = selectChanges(ctx, tx, `
SELECT seq, account_id, livemode, at, entitlement FROM entitlement_changes
WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ChangesBySeq returns the feed entries with the given positions that
// still exist (an erased account's are gone), in feed order.
func (s *Store) ChangesBySeq(ctx context.Context, seqs []int64) ([]billing.Change, error) {
	return selectChanges(ctx, s.db, `
SELECT seq, account_id, livemode, at, entitlement FROM entitlement_changes
WHERE seq = ANY($1) ORDER BY seq`, pq.Array(seqs))
}

func selectChanges(ctx context.Context, q sqlx.QueryerContext, query string, args ...any) ([]billing.Change, error) {
	var rows []struct {
		Seq         int64     `db:"seq"`
		AccountID   string    `db:"account_id"`
		Livemode    bool      `db:"livemode"`
		At          time.Time `db:"at"`
		Entitlement string    `db:"entitlement"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, query, args...); err != nil {
		return nil, fmt.Errorf("read changes: %w", translate(err))
	}
	out := make([]billing.Change, len(rows))
	for i, r := range rows {
		out[i] = billing.Change{Seq: r.Seq, AccountID: r.AccountID, Livemode: r.Livemode, At: r.At.UTC(), Entitlement: []byte(r.Entitlement)}
	}
	return out, nil
}

// PurgeChanges deletes feed entries older than age (at most 10,000 per
// call) and moves the horizon below which cursors are expired. Entries are
// appended in time order, so the deleted ones are a prefix of the feed.
func (s *Store) PurgeChanges(ctx context.Context, age time.Duration) (int64, error) {
	const q = `
WITH d AS (
    DELETE FROM entitlement_changes
    WHERE seq IN (SELECT seq FROM entitlement_changes
                  WHERE at < now() - make_interval(secs => $1)
                  ORDER BY seq LIMIT 10000)
    RETURNING seq
), h AS (
    UPDATE entitlement_feed SET purged_through = greatest(purged_through, (SELECT max(seq) FROM d))
    WHERE EXISTS (SELECT 1 FROM d)
)
SELECT count(*) FROM d`
	var n int64
	if err := s.db.GetContext(ctx, &n, q, age.Seconds()); err != nil {
		return 0, fmt.Errorf("purge changes: %w", translate(err))
	}
	return n, nil
}

// FeedStats is the producer's backlog, for metrics and commands.
type FeedStats struct {
	Dirty      int64 // dirty rows waiting for a producer pass
	LastSeq    int64 // the newest entry's position (0: none kept)
	OldestKept time.Time
}

// ChangeFeedStats reads the feed's backlog and extent.
func (s *Store) ChangeFeedStats(ctx context.Context) (FeedStats, error) {
	const q = `
SELECT (SELECT count(*) FROM (SELECT 1 FROM entitlement_dirty LIMIT 100000) AS d) AS dirty,
       coalesce((SELECT max(seq) FROM entitlement_changes), 0) AS last_seq,
       coalesce((SELECT at FROM entitlement_changes ORDER BY seq LIMIT 1), 'epoch') AS oldest`
	var r struct {
		Dirty  int64     `db:"dirty"`
		Last   int64     `db:"last_seq"`
		Oldest time.Time `db:"oldest"`
	}
	if err := s.db.GetContext(ctx, &r, q); err != nil {
		return FeedStats{}, fmt.Errorf("change feed stats: %w", translate(err))
	}
	return FeedStats{Dirty: r.Dirty, LastSeq: r.Last, OldestKept: r.Oldest}, nil
}

// eraseChangeFeed deletes an erased account's dirty rows (its own
// included), feed entries, feed state and undelivered app webhooks, in the
// erasure's transaction, which holds the account's exclusive lock: a
// producer pass that read the dirty rows waits for it before it deletes
// them or writes about the account, then sees the tombstone.
func eraseChangeFeed(ctx context.Context, tx *sqlx.Tx, accountID string) error {
	const q = `
WITH d AS (DELETE FROM entitlement_dirty WHERE account_id = $1),
     st AS (DELETE FROM entitlement_feed_state WHERE account_id = $1),
     ch AS (DELETE FROM entitlement_changes WHERE account_id = $1)
DELETE FROM outbox WHERE kind = 'app_webhook' AND state <> 'sent' AND ordering_key = 'app:' || md5($1)`
	if _, err := tx.ExecContext(ctx, q, accountID); err != nil {
		return fmt.Errorf("erase change feed: %w", translate(err))
	}
	return nil
}
