// Package stripeapi is everything billingd asks of the Stripe API, through
// one client (Client, one stripe-go client per configuration):
//
//   - backfill and reconcile (Syncer): list and fetch customers and
//     subscriptions as raw JSON, decode them with the webhook decoders and
//     write them through the same ApplyEvent path as webhooks, so the same
//     privacy whitelist, ordering, ledger and outbox rules hold; reconcile
//     reports drift between stored and Stripe state and can apply Stripe's
//     truth; Schedule runs it periodically inside serve;
//   - the Stripe jobs of erasures (JobWorker): cancel subscriptions and
//     delete customers from the durable outbox, after the local erasure has
//     committed, so a Stripe outage delays them and never half-erases an
//     account;
//   - the app's Checkout and Billing Portal sessions (Sessions): the
//     account's customer reused, a signed link reference and account_id
//     metadata set, the app's Idempotency-Key passed on, Stripe's failures
//     classified as retryable (503) or not (502).
//
// Tests run against internal/stripefake (a stateful fake of these
// endpoints) and Stripe's own stripe-mock (stripefake.StartStripeMock).
package stripeapi
