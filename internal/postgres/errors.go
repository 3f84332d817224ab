package postgres

import (
	"database/sql"
	"errors"

	"github.com/lib/pq"
)

var errNoRows = sql.ErrNoRows

func asPQ(err error) *pq.Error {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}
