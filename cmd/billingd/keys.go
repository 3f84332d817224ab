package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/postgres"
)

// keysEnv: the keys commands' variables.
var keysEnv = append(slices.Clone(dbEnv), "PROFITWELL_ALIAS_KEY")

// The keys commands show and retire key fingerprints (billing.KeyFingerprint:
// they name keys without revealing them); README "Secrets and key
// rotation" says when to use which.
func keysStatusCommand() *command {
	return &command{
		name:    "keys status",
		summary: "the erasure and link key rings in use and every recorded key fingerprint (never a key): configured or not, needed until when",
		about: `A start refused with "key changed" names a key the configuration lacks; this
lists every key billingd recorded, whether the configuration has it, and
until when it is needed. It changes nothing, except generating an instance
key a ring names and the database lacks.`,
		env: keysEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				return e.withMigratedStore(ctx, func(st *postgres.Store) error { return e.keysStatus(ctx, st, e.stdout) })
			}
		},
	}
}

func keysForgetCommand() *command {
	return &command{
		name:    "keys forget",
		args:    "link_signing|profitwell_alias FINGERPRINT",
		summary: "stop requiring a link or ProfitWell alias key rotated out on purpose (erasure keys are never forgotten)",
		env:     dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) != 2 {
					return usageError{"needs a purpose (link_signing or profitwell_alias) and a fingerprint (see keys status)"}
				}
				return e.withMigratedStore(ctx, func(st *postgres.Store) error {
					err := st.ForgetKey(ctx, args[0], args[1])
					if errors.Is(err, billing.ErrNotFound) {
						return fmt.Errorf("keys forget: no %s key with fingerprint %s is recorded", args[0], args[1])
					}
					if err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "forgot %s key %s\n", args[0], args[1])
					return nil
				})
			}
		},
	}
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
