// Package migrations embeds authd's schema migrations, plain SQL per
// dialect, in golang-migrate's file naming (NNNN_name.up.sql / .down.sql).
package migrations

import "embed"

// FS holds the migrations: postgres/*.sql and sqlite/*.sql.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
