package privacy

import (
	"fmt"
	"sort"
)

// Check (test code: the inventory tests run it against the migrated
// schema) compares the inventory with the live schema (table name → column
// names, as information_schema reports them) and returns one line per
// difference: a column or table the inventory does not describe, one it
// describes that no longer exists, or an entry without a category or
// purpose, or without an export section (or a reason why it has none). An
// empty result means the inventory is complete and current.
func Check(inv []Table, live map[string][]string) []string {
	var problems []string
	described := make(map[string]map[string]bool, len(inv))
	for _, t := range inv {
		cols := make(map[string]bool, len(t.Columns))
		if _, dup := described[t.Name]; dup {
			problems = append(problems, fmt.Sprintf("table %s is listed twice in the inventory", t.Name))
		}
		described[t.Name] = cols
		if t.Purpose == "" || t.Retention == "" || t.OnErasure == "" {
			problems = append(problems, fmt.Sprintf("table %s needs a purpose, a retention and an erasure rule", t.Name))
		}
		if t.Export == "" || (t.Export == "-" && t.NotExported == "") {
			problems = append(problems, fmt.Sprintf("table %s needs an export section, or \"-\" and why it is not exported", t.Name))
		}
		for _, c := range t.Columns {
			if cols[c.Name] {
				problems = append(problems, fmt.Sprintf("column %s.%s is listed twice in the inventory", t.Name, c.Name))
			}
			cols[c.Name] = true
			switch c.Category {
			case Identifier, BillingFact, Operational, MerchantCatalog:
			default:
				problems = append(problems, fmt.Sprintf("column %s.%s has category %q; want identifier, billing_fact, operational or merchant_catalog", t.Name, c.Name, c.Category))
			}
			if c.Purpose == "" {
				problems = append(problems, fmt.Sprintf("column %s.%s needs a purpose", t.Name, c.Name))
			}
		}
	}
	for _, table := range sortedKeys(live) {
		cols, ok := described[table]
		if !ok {
			problems = append(problems, fmt.Sprintf("table %s is in the schema but not in the inventory (internal/privacy/inventory.go)", table))
			continue
		}
		for _, c := range live[table] {
			if !cols[c] {
				problems = append(problems, fmt.Sprintf("column %s.%s is in the schema but not in the inventory (internal/privacy/inventory.go)", table, c))
			}
		}
	}
	for _, t := range inv {
		cols, ok := live[t.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("table %s is in the inventory but not in the schema", t.Name))
			continue
		}
		have := make(map[string]bool, len(cols))
		for _, c := range cols {
			have[c] = true
		}
		for _, c := range t.Columns {
			if !have[c.Name] {
				problems = append(problems, fmt.Sprintf("column %s.%s is in the inventory but not in the schema", t.Name, c.Name))
			}
		}
	}
	return problems
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
