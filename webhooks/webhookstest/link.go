package webhookstest

import "github.com/billingd/billingd/billing"

// LinkKey is the link signing key the fixtures' checkout references
// (client_reference_id) are signed with; each expires 48 hours after its
// event was created.
var LinkKey = []byte("billingd-fixture-link-signing-key")

// Links returns a verifier that accepts the fixtures' references, as a
// deployment whose LINK_SIGNING_KEYS holds LinkKey.
func Links() *billing.LinkVerifier {
	return billing.NewLinkVerifier([]billing.LinkKey{{Key: LinkKey}}, false)
}
