package billing

import (
	"errors"
	"fmt"
)

// Sentinel errors that the edges map to responses; stores translate driver
// errors into these so nothing above them sees a driver error.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrInvalid      = errors.New("invalid")
	ErrUnavailable  = errors.New("unavailable") // transient: a retry can succeed
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	// ErrInternal wraps a store error of no other class: a fault of this
	// service or its database that neither the client nor a retry is known
	// to fix. The edges answer 500 with a fixed message.
	ErrInternal = errors.New("internal")
)

// ErrOverloaded is an ErrUnavailable for work refused, or given up before
// it started, because it could not be done before its deadline: the
// service is busy, nothing was changed, and a retry later can succeed.
var ErrOverloaded = fmt.Errorf("%w: overloaded", ErrUnavailable)
