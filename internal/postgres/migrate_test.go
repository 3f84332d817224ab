package postgres_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

func TestMigrations(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	v, dirty, err := st.SchemaVersion()
	if err != nil || dirty || v != postgres.RequiredSchemaVersion() {
		t.Fatalf("template version = %d dirty=%v err=%v, want %d", v, dirty, err, postgres.RequiredSchemaVersion())
	}
	t.Run("DownAllAndUpAgain", func(t *testing.T) {
		for st.MigrateDown(1) == nil {
			if v, _, _ := st.SchemaVersion(); v == 0 {
				break
			}
		}
		if v, _, _ := st.SchemaVersion(); v != 0 {
			t.Fatalf("after down: version %d", v)
		}
		if err := st.MigrateUp(); err != nil {
			t.Fatal(err)
		}
		if v, _, _ := st.SchemaVersion(); v != postgres.RequiredSchemaVersion() {
			t.Fatalf("after up: version %d", v)
		}
	})
}

// Replicas starting together on a fresh database must both come up.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	admin := pgtest.AdminURL(t)
	url := pgtest.CreateDB(t, admin)
	// Roll the clone back to empty so the replicas race on a fresh schema.
	st, err := postgres.Open(context.Background(), url, slog.New(slog.DiscardHandler), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for {
		v, _, _ := st.SchemaVersion()
		if v == 0 {
			break
		}
		if err := st.MigrateDown(1); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(context.Background(), url, slog.New(slog.DiscardHandler), postgres.Options{})
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			errs[i] = s.MigrateUp()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	if v, dirty, _ := st.SchemaVersion(); v != postgres.RequiredSchemaVersion() || dirty {
		t.Fatalf("version %d dirty %v", v, dirty)
	}
}
