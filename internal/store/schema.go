package store

import "context"

// Schema is the migration state of a store's database.
type Schema struct {
	Version uint // the applied version, 0 when none
	Latest  uint // the newest version this build ships
	Dirty   bool // a migration failed halfway
}

// Current reports whether the schema is fully migrated and clean.
func (s Schema) Current() bool { return !s.Dirty && s.Version == s.Latest }

// Migrator is implemented by stores whose schema authd manages.
type Migrator interface {
	// MigrateUp applies every pending migration.
	MigrateUp(ctx context.Context) error
	// SchemaStatus reports the applied and the newest schema version.
	SchemaStatus(ctx context.Context) (Schema, error)
}
