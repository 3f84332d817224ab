package postgres

// Translate exposes the driver-error boundary to the external tests.
func Translate(err error) error { return translate(err) }
