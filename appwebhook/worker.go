package appwebhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/billingd/billingd/billing"
)

// Queue is the outbox and feed as the worker needs them
// (internal/postgres.Store).
type Queue interface {
	AppWebhookClaim(ctx context.Context, limit int, lease time.Duration) ([]billing.OutboxJob, error)
	AppWebhookAck(ctx context.Context, acks []billing.OutboxAck) (int64, error)
	ChangesBySeq(ctx context.Context, seqs []int64) ([]billing.Change, error)
}

// Worker delivers app webhook rows. Several workers (replicas) may run at
// once: a claim hands each row to one of them and at most one row per
// account, so an account's webhooks go one at a time, in feed order.
type Worker struct {
	Queue    Queue
	URL      string // APP_WEBHOOK_URL
	Secret   []byte // APP_WEBHOOK_SECRET
	Client   *http.Client
	Timeout  time.Duration // per POST; default 10 s
	MaxAge   time.Duration // retried this long after the entry, then dead; default 72 h
	Backoff  Backoff
	Batch    int           // rows per claim; default 64
	Parallel int           // POSTs at once; default 16
	Lease    time.Duration // claim lease; default 3 × Timeout + 30 s
	Poll     time.Duration // idle poll interval; default 250 ms
	// Wake, when not nil, ends an idle wait at once: the producer signals
	// it after committing entries, so a change goes out without waiting
	// for the next poll.
	Wake    <-chan struct{}
	Log     *slog.Logger
	Metrics *Metrics // nil: not collected
	Now     func() time.Time
}

func (w *Worker) defaults() {
	if w.Timeout <= 0 {
		w.Timeout = 10 * time.Second
	}
	if w.MaxAge <= 0 {
		w.MaxAge = 72 * time.Hour
	}
	if w.Batch <= 0 {
		w.Batch = 64
	}
	if w.Parallel <= 0 {
		w.Parallel = 16
	}
	if w.Lease <= 0 {
		w.Lease = 3*w.Timeout + 30*time.Second
	}
	if w.Poll <= 0 {
		w.Poll = 250 * time.Millisecond
	}
	if w.Log == nil {
		w.Log = slog.Default()
	}
	if w.Now == nil {
		w.Now = time.Now
	}
	if w.Client == nil {
		w.Client = &http.Client{
			// A redirect is a failure to deliver, not a new target: a POST
			// would be replayed as a GET, or the body sent elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second},
		}
	}
}

// Run delivers rows until ctx ends. Database errors are logged and retried
// with backoff (up to 30 s).
func (w *Worker) Run(ctx context.Context) error {
	w.defaults()
	w.Log.Info("app webhook worker started", "batch", w.Batch, "parallel", w.Parallel)
	failures := 0
	for {
		n, err := w.RunOnce(ctx)
		if ctx.Err() != nil {
			w.Log.Info("app webhook worker stopped")
			return nil
		}
		wait := w.Poll
		if err != nil {
			failures++
			wait = min(w.Poll<<min(failures, 7), 30*time.Second)
			w.Log.Warn("app webhook worker: claim failed", "err", err, "retry_in", wait.String())
		} else {
			failures = 0
		}
		if n == w.Batch && err == nil {
			continue // a backlog: no pause
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			w.Log.Info("app webhook worker stopped")
			return nil
		case <-w.Wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// RunOnce claims one batch, sends it and records the outcomes, returning
// how many rows it claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	w.defaults()
	jobs, err := w.Queue.AppWebhookClaim(ctx, w.Batch, w.Lease)
	if err != nil || len(jobs) == 0 {
		return 0, err
	}
	seqs := make([]int64, 0, len(jobs))
	seqOf := make([]int64, len(jobs))
	for i, j := range jobs {
		var p struct {
			Seq int64 `json:"seq"`
		}
		if err := json.Unmarshal(j.Payload, &p); err == nil {
			seqOf[i] = p.Seq
			seqs = append(seqs, p.Seq)
		}
	}
	changes, err := w.Queue.ChangesBySeq(ctx, seqs)
	if err != nil {
		// Not sent: the leases run out and the rows are claimed again.
		return len(jobs), err
	}
	bySeq := make(map[int64]billing.Change, len(changes))
	for _, c := range changes {
		bySeq[c.Seq] = c
	}
	acks := make([]billing.OutboxAck, len(jobs))
	sem := make(chan struct{}, w.Parallel)
	var wg sync.WaitGroup
	for i, j := range jobs {
		c, ok := bySeq[seqOf[i]]
		if !ok {
			// The entry is gone (its account was erased, or it outlived
			// CHANGES_RETENTION): nothing left to send.
			acks[i] = billing.OutboxAck{ID: j.ID, Attempt: j.Attempts, Outcome: billing.AckSent}
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			acks[i] = w.deliver(ctx, j, c)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		// Stopping: outcomes of sends cut short are not the app's fault;
		// the leases run out and another worker sends again.
		kept := acks[:0]
		for _, a := range acks {
			if a.Outcome == billing.AckSent {
				kept = append(kept, a)
			}
		}
		acks = kept
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := w.Queue.AppWebhookAck(actx, acks); err != nil {
		// Delivered rows are sent again after their lease: at least once.
		return len(jobs), fmt.Errorf("record app webhook outcomes: %w", err)
	}
	return len(jobs), nil
}

// deliver POSTs one entry and says what became of it.
func (w *Worker) deliver(ctx context.Context, j billing.OutboxJob, c billing.Change) billing.OutboxAck {
	ack := billing.OutboxAck{ID: j.ID, Attempt: j.Attempts}
	status, err := w.post(ctx, c)
	if err == nil && status/100 == 2 {
		ack.Outcome, ack.Status = billing.AckSent, status
		w.Metrics.sent(w.Now().Sub(c.At))
		return ack
	}
	ack.Status = status
	switch {
	case err != nil:
		ack.Error = err.Error()
	default:
		ack.Error = "app answered " + strconv.Itoa(status)
	}
	if w.Now().Sub(j.CreatedAt) >= w.MaxAge {
		ack.Outcome = billing.AckDead
		w.Metrics.dead()
		w.Log.Warn("app webhook dead-lettered", "outbox_id", j.ID, "cursor", c.Cursor(), "attempts", j.Attempts, "status", status, "error", ack.Error)
		return ack
	}
	ack.Outcome, ack.Delay = billing.AckRetry, w.Backoff.Delay(j.Attempts)
	w.Metrics.failed(status)
	w.Log.Info("app webhook failed; will retry", "outbox_id", j.ID, "cursor", c.Cursor(), "attempts", j.Attempts,
		"status", status, "error", ack.Error, "retry_in", ack.Delay.String())
	return ack
}

// post sends c and returns the HTTP status. Its error is a fixed summary:
// a transport error's text may carry the URL, and it is stored.
func (w *Worker) post(ctx context.Context, c billing.Change) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	body := Body(c)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("bad APP_WEBHOOK_URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "billingd")
	req.Header.Set(SignatureHeader, Sign(w.Secret, w.Now(), body))
	resp, err := w.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("no answer within %s", w.Timeout)
		}
		return 0, errors.New("connection failed")
	}
	// Drain a little so the connection can be reused; the body is not read.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}
