// Package appwebhook delivers the change feed to the app: every feed entry
// (internal/postgres/changes.go) is POSTed to APP_WEBHOOK_URL as an
// entitlement.changed event, signed like Stripe's webhooks
// (Billingd-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>),
// so an app verifies it with the code it already has for Stripe, or with
// client.VerifyWebhook.
//
// Delivery goes through the Postgres outbox (kind app_webhook), written in
// the entry's own transaction: at least once, one at a time per account in
// feed order (a later entry of an account waits while an earlier one is in
// flight or retrying), retried with backoff for up to MaxAge (3 days, as
// Stripe does), then dead-lettered: visible in `billingd app-webhooks
// status` and billingd_outbox_depth{kind="app_webhook",state="dead"}, and
// re-queued by `billingd app-webhooks retry`. A worker that dies mid-send
// loses nothing: its claim's lease runs out and another worker sends again.
//
// Payloads carry the account ID, the mode, the rendered entitlement answer
// and the feed cursor: no personal data (the feed holds none).
package appwebhook
