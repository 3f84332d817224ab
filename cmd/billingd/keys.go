package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/postgres"
)

// keysCmd: billingd keys status | forget link_signing|profitwell_alias FINGERPRINT.
// Fingerprints name keys without revealing them (billing.KeyFingerprint);
// the README's "Secrets and key rotation" says when to use which.
func (e *env) keysCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"keys needs status or forget"}
	}
	var run func(st *postgres.Store) error
	switch args[0] {
	case "status":
		if len(args) != 1 {
			return usageError{"keys status takes no arguments"}
		}
		run = func(st *postgres.Store) error { return e.keysStatus(ctx, st, e.stdout) }
	case "forget":
		if len(args) != 3 {
			return usageError{"keys forget needs a purpose (link_signing or profitwell_alias) and a fingerprint (see keys status)"}
		}
		run = func(st *postgres.Store) error {
			err := st.ForgetKey(ctx, args[1], args[2])
			if errors.Is(err, billing.ErrNotFound) {
				return fmt.Errorf("keys forget: no %s key with fingerprint %s is recorded", args[1], args[2])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "forgot %s key %s\n", args[1], args[2])
			return nil
		}
	default:
		return usageError{fmt.Sprintf("unknown keys command %q", args[0])}
	}
	db, err := e.openDatabase(ctx)
	if err != nil {
		return err
	}
	defer db.close(ctx)
	if err := db.store.MigrateUp(); err != nil {
		return err
	}
	return run(db.store)
}

// keysStatus prints the configured rings and every recorded key, and
// whether the configuration still has each one: what a refused start is
// about. It changes nothing but generating a missing instance key.
func (e *env) keysStatus(ctx context.Context, st *postgres.Store, w io.Writer) error {
	erasure, link, err := st.KeyRingFingerprints(ctx)
	if err != nil {
		return err
	}
	configured := map[string][]string{postgres.PurposeErasure: erasure, postgres.PurposeLink: link}
	if e.cfg.ProfitWellAliasKey != "" {
		configured[postgres.PurposeProfitWell] = []string{billing.KeyFingerprint([]byte(e.cfg.ProfitWellAliasKey))}
	}
	rows, err := st.KeyFingerprints(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PURPOSE\tFINGERPRINT\tCONFIGURED\tRECORDED\tFIRST USED\tNEEDED UNTIL")
	for _, p := range []string{postgres.PurposeErasure, postgres.PurposeLink, postgres.PurposeProfitWell} {
		for i, fp := range configured[p] {
			role := "yes"
			if i == 0 && p != postgres.PurposeProfitWell {
				role = "yes (writes)"
			}
			row, recorded := findRow(rows, p, fp)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p, fp, role, yesNo(recorded), firstUsed(row), neededUntil(p, row))
		}
		for _, row := range rows {
			if row.Purpose == p && !slices.Contains(configured[p], row.Fingerprint) {
				fmt.Fprintf(tw, "%s\t%s\tNO\tyes\t%s\t%s\n", p, row.Fingerprint, firstUsed(&row), neededUntil(p, &row))
			}
		}
	}
	return tw.Flush()
}

func findRow(rows []postgres.KeyFingerprintRow, purpose, fp string) (*postgres.KeyFingerprintRow, bool) {
	for i := range rows {
		if rows[i].Purpose == purpose && rows[i].Fingerprint == fp {
			return &rows[i], true
		}
	}
	return nil, false
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func firstUsed(r *postgres.KeyFingerprintRow) string {
	if r == nil {
		return "-"
	}
	return r.FirstUsedAt.UTC().Format(time.RFC3339)
}

// neededUntil says how long a recorded key must stay configured.
func neededUntil(purpose string, r *postgres.KeyFingerprintRow) string {
	switch {
	case r == nil:
		return "-"
	case purpose == postgres.PurposeErasure:
		return "forever"
	case purpose == postgres.PurposeProfitWell:
		return "until rotated on purpose"
	}
	var until *time.Time
	for _, t := range []*time.Time{r.ValidUntil, r.LegacyUntil} {
		if t != nil && (until == nil || t.After(*until)) {
			until = t
		}
	}
	if until == nil || !until.After(time.Now()) {
		return "no longer"
	}
	return until.UTC().Format(time.RFC3339)
}
