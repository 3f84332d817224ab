package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// The features catalog (entitlement_catalog): one document, replaced as a
// whole. Every account's answer reads it, so a change invalidates every
// cached answer on every replica: a feed row of kind invalidationAll,
// which each poller turns into a flush of its entitlement answers, and
// on this replica the OnCatalogChanged hook before the write returns
// (read your writes). It also marks every account for the change feed
// (MarkAllAccountsDirty), in one row the producer expands.

// AuditActionCatalog is the audit_log action of a catalog replacement.
const AuditActionCatalog = "catalog.replace"

// OnCatalogChanged has f told after every committed catalog change of this
// Store, before the write returns (serve wires it to the entitlement
// cache's FlushEntitlements). Call it before the first write.
func (s *Store) OnCatalogChanged(f func()) { s.onCatalog = f }

// Catalog returns the stored catalog; an empty one (and a zero UpdatedAt)
// when none was ever applied.
func (s *Store) Catalog(ctx context.Context) (billing.CatalogRecord, error) {
	return readCatalog(ctx, s.db)
}

// readCatalog is Catalog on q (the pool, or the change feed producer's
// transaction).
func readCatalog(ctx context.Context, q sqlx.QueryerContext) (billing.CatalogRecord, error) {
	const qc = `SELECT document, updated_at, updated_by FROM entitlement_catalog WHERE id = 1`
	var row struct {
		Doc       []byte    `db:"document"`
		UpdatedAt time.Time `db:"updated_at"`
		UpdatedBy string    `db:"updated_by"`
	}
	err := sqlx.GetContext(ctx, q, &row, qc)
	if err == errNoRows {
		c, _ := billing.ParseCatalog([]byte(`{}`))
		return billing.CatalogRecord{Catalog: c}, nil
	}
	if err != nil {
		return billing.CatalogRecord{}, fmt.Errorf("read catalog: %w", translate(err))
	}
	c, err := billing.ParseCatalog(row.Doc)
	if err != nil {
		// Written only after ParseCatalog accepted it: a stored document
		// that no longer parses is a bug, not bad input.
		return billing.CatalogRecord{}, fmt.Errorf("read catalog: %w: %w", billing.ErrInternal, err)
	}
	at := row.UpdatedAt.UTC()
	return billing.CatalogRecord{Catalog: c, UpdatedAt: &at, UpdatedBy: row.UpdatedBy}, nil
}

// CatalogPut replaces the catalog, audits it (actor, feature and
// product/price counts) and invalidates every replica's cached answers.
func (s *Store) CatalogPut(ctx context.Context, c billing.Catalog, actor string) error {
	if !billing.ValidActor(actor) {
		return fmt.Errorf("replace catalog: %w: actor must be 1-80 characters of A-Z a-z 0-9 _ . : -", billing.ErrInvalid)
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		const q = `
INSERT INTO entitlement_catalog (id, document, updated_at, updated_by) VALUES (1, $1, now(), $2)
ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document, updated_at = now(), updated_by = EXCLUDED.updated_by`
		if _, err := tx.ExecContext(ctx, q, string(c.Document()), actor); err != nil {
			return fmt.Errorf("replace catalog: %w", translate(err))
		}
		details, _ := json.Marshal(map[string]int{"features": len(c.Features), "products": len(c.Products), "prices": len(c.Prices)})
		const qAudit = `INSERT INTO audit_log (actor, action, details) VALUES ($1, $2, $3)`
		if _, err := tx.ExecContext(ctx, qAudit, actor, AuditActionCatalog, string(details)); err != nil {
			return fmt.Errorf("audit catalog: %w", translate(err))
		}
		// Every answer may change: one all-accounts mark for the change
		// feed, which its producer expands (changes.go).
		if err := MarkAllAccountsDirty(ctx, tx); err != nil {
			return err
		}
		return insertInvalidation(ctx, tx, invalidationAll, 0)
	})
	if err != nil {
		return err
	}
	if s.onCatalog != nil {
		s.onCatalog()
	}
	return nil
}
