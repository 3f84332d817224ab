package billing

import "time"

// Backfill lists, in the order a backfill walks them: customers first, so
// their account hints link them before their subscriptions arrive.
const (
	BackfillCustomers     = "customers"
	BackfillSubscriptions = "subscriptions"
)

// BackfillCursor is how far one Stripe list has been applied in the
// current backfill run. Stripe lists newest first, so a resumed run lists
// objects created at or before CreatedLTE (that second is listed again;
// re-applying an unchanged object changes nothing).
type BackfillCursor struct {
	List       string
	CreatedLTE *time.Time // nil: start from the newest object
	Done       bool
	Objects    int64
}

// StoredCustomer is what reconcile and backfill need to know about a
// stored customer to decide whether Stripe's copy changes anything.
type StoredCustomer struct {
	ID       string
	Livemode *bool // nil: linked by the app before Stripe told billingd its mode
	Deleted  bool
	Linked   bool
}

// BackfillPartition is one part of a Stripe list in a partitioned
// backfill: the objects created in [CreatedGTE, CreatedLTE] (nil: open on
// that side). CreatedLTE moves down as the part's pages are applied, and
// CreatedGTE rises when the part is split, its older half becoming a new
// part; parts never leave a gap between them.
type BackfillPartition struct {
	List       string
	Part       int
	CreatedGTE *time.Time
	CreatedLTE *time.Time
	Done       bool
	Objects    int64
}
