// Package client is what an app backend imports to talk to billingd. For
// now it holds VerifyWebhook, which checks and decodes billingd's outbound
// webhooks (entitlement.changed); the API client proper comes later.
package client
