// Package billing holds billingd's domain: subscription facts, the rules that
// order, value and entitle them, and the interfaces the outside packages
// implement. It imports no HTTP, SQL or Stripe package: webhooks/ turns Stripe
// payloads into these types and the store persists them.
package billing
