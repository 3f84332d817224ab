//go:build tools

// Package deps pins modules the project uses before every package imports them.
package deps

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/postgres"
	_ "github.com/golang-migrate/migrate/v4/source/iofs"
	_ "github.com/gorilla/mux"
	_ "github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/stripe/stripe-go/v76"
)
