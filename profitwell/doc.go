// Package profitwell sends billingd's revenue facts to ProfitWell under
// pseudonymous aliases, never contact data: a client for the calls in
// docs/profitwell-api.md, the keyed alias derivation, a
// client-side rate limiter, and the outbox worker that delivers queued sync
// rows in order with retries and a dead-letter state.
package profitwell
