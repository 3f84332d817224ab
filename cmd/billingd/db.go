package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/billingd/billingd/internal/pgserver"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/lib/pq"
)

// database is an open store plus whatever must happen when the command ends
// (stopping the embedded server).
type database struct {
	store    *postgres.Store
	url      string
	embedded *pgserver.Server
	use      *pgserver.Use
	// stopEmbedded: close stops the embedded server if no other process
	// uses it any more (pgserver.Use): when this process started it, or
	// serve claims it. A one-shot command next to a running serve, or a
	// second serve on the same data directory, never stops the database
	// under the other one.
	stopEmbedded bool
}

// openDatabase connects to DATABASE_URL or, when it is unset, starts the
// embedded local PostgreSQL under BILLINGD_DATA_DIR and uses its "billingd"
// database. The caller must call close.
func (e *env) openDatabase(ctx context.Context) (*database, error) {
	d := &database{url: e.cfg.DatabaseURL}
	if d.url == "" {
		srv, err := pgserver.New(filepath.Join(e.cfg.DataDir, "pg"))
		if err != nil {
			return nil, err
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		use, err := srv.Use(sctx)
		if err != nil {
			return nil, err
		}
		d.embedded, d.use, d.stopEmbedded = srv, use, use.Started()
		e.log.Info("using embedded PostgreSQL", "data_dir", srv.DataDir, "socket_dir", srv.SocketDir, "log_file", srv.LogFile)
		if err := createDatabase(ctx, srv.URL("postgres"), "billingd"); err != nil {
			d.close(ctx)
			return nil, err
		}
		d.url = srv.URL("billingd")
	}
	sessionURL := e.cfg.DatabaseSessionURL
	if e.cfg.DatabaseURL == "" {
		sessionURL = d.url
	}
	st, err := postgres.Open(ctx, d.url, e.log, postgres.Options{MaxOpenConns: e.cfg.DBMaxConns, EventBatchers: e.cfg.EventBatchers,
		EventBatchMax: e.cfg.EventBatchMax, EventQueueMax: e.cfg.EventQueueMax,
		SessionURL: sessionURL, PrepareStatements: e.cfg.DBPreparedStatements})
	if err != nil {
		d.close(ctx)
		return nil, err
	}
	// Every command hashes erased IDs with the same ring (tombstones) and
	// signs references with the same link keys.
	st.SetErasureKeys(ringEntries(e.cfg.ErasureKeys))
	st.SetLinkSigningKeys(ringEntries(e.cfg.LinkSigningKeys))
	d.store = st
	return d, nil
}

// ringEntries turns a configured key ring into the store's form.
func ringEntries(keys []string) []postgres.RingEntry {
	var out []postgres.RingEntry
	for _, k := range keys {
		out = append(out, postgres.RingEntry{Key: []byte(k), Generated: k == generatedKey})
	}
	return out
}

func (d *database) close(ctx context.Context) {
	if d.store != nil {
		d.store.Close()
	}
	if d.use != nil {
		// ctx is usually the cancelled signal context by now.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, err := d.use.Release(sctx, d.stopEmbedded); err != nil {
			fmt.Fprintf(os.Stderr, "billingd: %v\n", err)
		}
	}
}

func createDatabase(ctx context.Context, adminURL, name string) error {
	st, err := postgres.Open(ctx, adminURL, nil, postgres.Options{MaxOpenConns: 1})
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = st.DB().ExecContext(ctx, `CREATE DATABASE `+pq.QuoteIdentifier(name))
	var pe *pq.Error
	if errors.As(err, &pe) && pe.Code == "42P04" { // duplicate_database
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// devWebhookSecret returns the development webhook secret kept beside the
// local data, creating it on first use. Only the embedded mode uses it: a
// real deploy configures Stripe's secret.
func (e *env) devWebhookSecret() (string, error) {
	path := filepath.Join(e.cfg.DataDir, "webhook-secret")
	if b, err := os.ReadFile(path); err == nil {
		if s := strings.TrimSpace(string(b)); strings.HasPrefix(s, "whsec_") {
			return s, nil
		}
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	s := "whsec_dev_" + hex.EncodeToString(b[:])
	if err := os.MkdirAll(e.cfg.DataDir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep development webhook secret: %w", err)
	}
	return s, nil
}
