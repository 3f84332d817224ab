package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// featuresCatalog is the features case's catalog: 10 features over the
// seeded products (seat, support) and the add-on's (reports, api).
const featuresCatalog = `{"features": {"sso": {}, "seats": {}, "projects": {}, "api_calls": {}, "reports": {}, "audit_log": {},
  "exports": {}, "webhooks_out": {}, "custom_domain": {}, "priority_support": {}},
 "products": {"prod_seat": {"sso": true, "seats": {"per_unit": 1}, "projects": 50, "api_calls": 10000, "audit_log": true},
              "prod_support": {"priority_support": true, "exports": 100},
              "prod_reports": {"reports": true, "projects": 20, "exports": "unlimited"},
              "prod_api": {"api_calls": 100000, "webhooks_out": 10}},
 "prices": {"price_seat": {"projects": 100, "custom_domain": true}}}`

// benchFeatures is the entitlement benchmark's features case, on the
// server at base whose accounts acct_ent<i> benchEntitlement seeded: a
// catalog of 10 features, an add-on subscription on a third of the
// accounts (through the webhook path) and overrides on a tenth (through
// the API). It measures the full answer and the single-feature answer
// against a bare handler serving the same bodies from a map, in
// interleaved rounds, and prints their rates and p99 ratios.
func benchFeatures(ctx context.Context, c *config, base, dbURL, token string, accounts, requests int) error {
	client := httpClient()
	send := func(method, path, body string) error {
		req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %s: %d %.200s", method, path, resp.StatusCode, b)
		}
		return nil
	}
	if err := send(http.MethodPut, "/v1/catalog", featuresCatalog); err != nil {
		return err
	}
	// The add-on: a second subscription of the same customer (its own
	// events, through the real path).
	var addons [][]byte
	for i, ev := range benchEvents("ent", accounts) {
		if i%3 != 0 {
			continue
		}
		for _, r := range [][2]string{{`"evt_ent`, `"evt_entaddon`}, {`sub_ent`, `sub_entaddon`}, {`si_ent`, `si_entaddon`},
			{`price_seat`, `price_reports`}, {`prod_seat`, `prod_reports`}, {`price_support`, `price_api`}, {`prod_support`, `prod_api`}} {
			ev = bytes.ReplaceAll(ev, []byte(r[0]), []byte(r[1]))
		}
		addons = append(addons, ev)
	}
	if _, err := postEvents(ctx, 32, base+"/webhooks/stripe", sign(addons)); err != nil {
		return fmt.Errorf("add-on subscriptions: %w", err)
	}
	if _, err := runLoad(ctx, 32, accounts/10, func(ctx context.Context, i int) error {
		return send(http.MethodPut, fmt.Sprintf("/v1/accounts/acct_ent%07d/overrides", i*10), `{"features": {"projects": 500, "beta": true}}`)
	}); err != nil {
		return fmt.Errorf("overrides: %w", err)
	}
	if _, left, err := waitFactsSettled(ctx, dbURL); err != nil || left > 0 {
		return fmt.Errorf("revenue facts of the add-ons not derived (%d left): %v", left, err)
	}

	full := make([]string, accounts)
	one := make([]string, accounts)
	for i := range accounts {
		full[i] = fmt.Sprintf("/v1/accounts/acct_ent%07d/entitlement", i)
		one[i] = full[i] + "/features/projects"
	}
	// Warm billingd's cache and record its bodies for the bare handler.
	var mu sync.Mutex
	bodies := make(map[string][]byte, 2*accounts)
	get := func(base string, paths []string, auth, record bool) func(context.Context, int) error {
		return func(ctx context.Context, i int) error {
			p := paths[i%len(paths)]
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+p, nil)
			if auth {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: %d %.200s", p, resp.StatusCode, b)
			}
			if record {
				mu.Lock()
				bodies[p] = b
				mu.Unlock()
			}
			return nil
		}
	}
	for _, paths := range [][]string{full, one} {
		if _, err := runLoad(ctx, 32, accounts, get(base, paths, true, true)); err != nil {
			return fmt.Errorf("features warm-up: %w", err)
		}
	}
	// A third of the answers carry the add-on's features, a tenth the
	// override: check a few, so the case measures what it says.
	if !bytes.Contains(bodies[full[0]], []byte(`"reports"`)) || !bytes.Contains(bodies[one[0]], []byte(`"limit":500`)) ||
		bytes.Contains(bodies[full[1]], []byte(`"reports"`)) || !bytes.Contains(bodies[one[1]], []byte(`"limit":100`)) {
		return fmt.Errorf("features case: unexpected answers %s / %s / %s", bodies[full[0]], bodies[one[0]], bodies[one[1]])
	}
	bareURL, closeBare, err := serveLoopback(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	if err != nil {
		return err
	}
	defer closeBare()

	stages := []struct {
		name string
		fn   func(context.Context, int) error
	}{
		{"bare_full", get(bareURL, full, false, false)},
		{"features", get(base, full, true, false)},
		{"bare_one", get(bareURL, one, false, false)},
		{"feature_one", get(base, one, true, false)},
	}
	const rounds = 4
	lats := make([][]time.Duration, len(stages))
	elapsed := make([]time.Duration, len(stages))
	for range rounds {
		for i, s := range stages {
			lat, d, err := latencies(ctx, 32, requests/rounds, s.fn)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			lats[i] = append(lats[i], lat...)
			elapsed[i] += d
		}
	}
	res := make([]loadResult, len(stages))
	for i := range stages {
		l := lats[i]
		sort.Slice(l, func(a, b int) bool { return l[a] < l[b] })
		res[i] = loadResult{n: len(l), elapsed: elapsed[i], p50: l[len(l)/2], p99: l[len(l)*99/100]}
	}
	bareFull, feats, bareOne, featOne := res[0], res[1], res[2], res[3]
	c.print("entitlement_features_rps_c32", "%.0f", feats.rate())
	c.print("entitlement_features_p99_ms_c32", "%s", ms(feats.p99))
	c.print("entitlement_features_bare_rps_c32", "%.0f", bareFull.rate())
	c.print("entitlement_feature_one_rps_c32", "%.0f", featOne.rate())
	c.print("entitlement_feature_one_p99_ms_c32", "%s", ms(featOne.p99))
	c.print("entitlement_feature_one_bare_rps_c32", "%.0f", bareOne.rate())
	c.print("entitlement_features_ratio_c32", "%.2f", feats.rate()/bareFull.rate())
	c.print("entitlement_features_p99_ratio_c32", "%.2f", float64(feats.p99)/float64(bareFull.p99))
	c.print("entitlement_feature_one_ratio_c32", "%.2f", featOne.rate()/bareOne.rate())
	c.print("entitlement_feature_one_p99_ratio_c32", "%.2f", float64(featOne.p99)/float64(bareOne.p99))
	return nil
}
