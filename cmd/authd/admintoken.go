package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

const adminUsage = `usage:
  authd admin token issue [--name NAME] [--expires DURATION]
  authd admin token list
  authd admin token revoke ID`

// runAdmin dispatches the admin subcommands: tokens for automation that
// authorise the admin API (AUTHD_ADMIN_API) without a user or a device.
func runAdmin(ctx context.Context, env *environment, args []string) error {
	if len(args) < 2 || args[0] != "token" {
		return errors.New(adminUsage)
	}
	switch args[1] {
	case "issue":
		return runAdminTokenIssue(ctx, env, args[2:])
	case "list":
		return runAdminTokenList(ctx, env, args[2:])
	case "revoke":
		return runAdminTokenRevoke(ctx, env, args[2:])
	default:
		return fmt.Errorf("unknown admin token command %q\n%s", args[1], adminUsage)
	}
}

// runAdminTokenIssue mints an admin token and stores its hash. The token
// goes to standard output, alone, once: it is never shown again. Its ID,
// by which it is listed and revoked, goes to standard error.
func runAdminTokenIssue(ctx context.Context, env *environment, args []string) error {
	c := newUserCommand(env, "admin token issue", forAdmin)
	name := c.fs.String("name", "", "what the token is for, shown by list")
	expires := c.fs.Duration("expires", 0, "lifetime of the token (a Go duration such as 720h); 0 never expires")
	if _, err := c.parse(args, 0, "authd admin token issue [--name NAME] [--expires DURATION]"); err != nil {
		return err
	}
	if *expires < 0 || len(*name) > 200 {
		return errors.New("--expires must be positive and --name at most 200 bytes")
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now().UTC()
	t := token.New(token.Admin)
	at := store.AdminToken{ID: strings.ToLower(rand.Text()[:10]), Hash: token.Hash(t), Name: *name, CreatedAt: now}
	if *expires > 0 {
		at.ExpiresAt = now.Add(*expires)
	}
	if err := st.CreateAdminToken(ctx, at); err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, t)
	fmt.Fprintf(env.stderr, "issued admin token %s; keep it secret, it is not shown again\n", at.ID)
	return nil
}

// runAdminTokenList lists the admin tokens: ID, name and times, never the
// token.
func runAdminTokenList(ctx context.Context, env *environment, args []string) error {
	c := newUserCommand(env, "admin token list", forAdmin)
	if _, err := c.parse(args, 0, "authd admin token list"); err != nil {
		return err
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	tokens, err := st.ListAdminTokens(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tCREATED\tEXPIRES")
	for _, t := range tokens {
		expires := "never"
		if !t.ExpiresAt.IsZero() {
			expires = t.ExpiresAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Name, t.CreatedAt.Format(time.RFC3339), expires)
	}
	return tw.Flush()
}

// runAdminTokenRevoke deletes an admin token; every replica refuses it
// from its next request (admin tokens are never cached).
func runAdminTokenRevoke(ctx context.Context, env *environment, args []string) error {
	c := newUserCommand(env, "admin token revoke", forAdmin)
	pos, err := c.parse(args, 1, "authd admin token revoke ID")
	if err != nil {
		return err
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	err = st.DeleteAdminToken(ctx, pos[0])
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no admin token %s", pos[0])
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "revoked admin token %s\n", pos[0])
	return nil
}
