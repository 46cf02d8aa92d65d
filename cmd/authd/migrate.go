package main

import (
	"context"
	"fmt"
)

func runMigrate(ctx context.Context, env *environment, args []string) error {
	var cfg config
	fs := newFlagSet("migrate", env.stderr)
	validate := cfg.flags(fs, env.getenv, forMigrate)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := validate(); err != nil {
		return err
	}
	action := "up"
	switch fs.NArg() {
	case 0:
	case 1:
		action = fs.Arg(0)
	default:
		return fmt.Errorf("usage: authd migrate [up|version]")
	}
	if action != "up" && action != "version" {
		return fmt.Errorf("unknown migrate action %q: use up or version", action)
	}

	st, err := openStore(ctx, cfg.DatabaseURL, outboxHook{})
	if err != nil {
		return err
	}
	defer st.Close()
	if action == "up" {
		if err := st.MigrateUp(ctx); err != nil {
			return err
		}
	}
	s, err := st.SchemaStatus(ctx)
	if err != nil {
		return err
	}
	state := "current"
	switch {
	case s.Dirty:
		state = "dirty"
	case s.Version < s.Latest:
		state = "behind: run `authd migrate up`"
	case s.Version > s.Latest:
		state = "newer than this authd"
	}
	fmt.Fprintf(env.stdout, "schema version %d of %d (%s)\n", s.Version, s.Latest, state)
	return nil
}
