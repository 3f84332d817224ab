package privacy_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/billingd/billingd/internal/privacy"
	"github.com/billingd/billingd/profitwell"
)

// Every field the ProfitWell client can put in a request body is one the
// inventory says ProfitWell receives: a field added to the client without
// being declared here fails.
func TestProfitWellClientSendsOnlyInventoriedFields(t *testing.T) {
	t.Parallel()
	declared := map[string]bool{}
	for _, p := range privacy.Processors() {
		if p.Name == "ProfitWell" {
			for _, f := range p.Receives {
				declared[f.Name] = true
			}
		}
	}
	for _, body := range []any{profitwell.Subscription{}, profitwell.Update{}} {
		typ := reflect.TypeOf(body)
		t.Run(typ.Name(), func(t *testing.T) {
			t.Parallel()
			if typ.NumField() == 0 {
				t.Fatal("no fields: is this still the request body?")
			}
			for i := range typ.NumField() {
				f := typ.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				if name == "-" {
					continue
				}
				if name == "" {
					name = f.Name
				}
				if !declared[name] {
					t.Errorf("profitwell.%s.%s is sent as %q, which the inventory does not list (internal/privacy/processors.go)", typ.Name(), f.Name, name)
				}
			}
		})
	}
}
