// Package layout holds no code: its test (layout_test.go) keeps the
// module's import structure as the picture there draws it, so that the
// domain stays free of HTTP, SQL and Stripe, Stripe's client stays in one
// package, and nothing reaches into the commands. `go test ./...` runs it.
package layout
