package billing

import "errors"

// Sentinel errors that the edges map to responses; stores translate driver
// errors into these so nothing above them sees a driver error.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrInvalid      = errors.New("invalid")
	ErrUnavailable  = errors.New("unavailable") // transient: a retry can succeed
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
)
