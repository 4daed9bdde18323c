package sqlstore

import (
	"io/fs"
)

// dialect is everything the shared query layer needs to know about one
// database engine. Queries are written with '?' placeholders and portable
// SQL; a dialect rewrites placeholders where its driver wants another
// style and translates driver errors into store errors.
type dialect struct {
	// name names the dialect in errors and the migrations directory.
	name string
	// migrations holds the dialect's NNNN_name.sql files at its root.
	migrations fs.FS
	// rebind rewrites a query's '?' placeholders into the driver's style.
	rebind func(query string) string
	// classify returns store.ErrConflict (wrapping err) for unique and
	// primary key violations, store.ErrNotFound for foreign key violations
	// (the referenced record does not exist), and err unchanged otherwise.
	classify func(err error) error
	// fatal reports whether an error from a statement inside a
	// transaction may have ended or spoiled the transaction, so that
	// operations sharing it must be run again on their own.
	fatal func(err error) bool
}
