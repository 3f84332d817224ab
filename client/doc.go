// Package client is the Go client app backends use to talk to billingd:
// entitlement reads (with ETag reuse), feature checks, linking, erasure,
// Checkout and Billing Portal sessions, the change feed, and verification
// of billingd's outbound webhooks. It imports nothing else of billingd, so
// an app pulls in only this package and the standard library.
//
// Every call takes a context. A 503 (billingd's "a retry can succeed") is
// retried, honouring Retry-After, up to the client's retry limit; every
// other error is returned as an *Error whose Code is billingd's stable
// error code, comparable with errors.Is against the Err* values.
//
//	c, err := client.New("https://billing.internal", os.Getenv("BILLINGD_TOKEN"))
//	ent, err := c.Entitlement(ctx, "acct_42")
//	if ent.Entitled { ... }
package client
