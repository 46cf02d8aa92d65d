package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/authd/authd/internal/password"
	"github.com/authd/authd/internal/store"
)

const userUsage = `usage:
  authd user create LOCALPART [--email ADDR] [--password-stdin] [--admin]
  authd user passwd LOCALPART [--password-stdin] [--keep-sessions]
  authd user deactivate LOCALPART
  authd user admin LOCALPART on|off
  authd user lock|unlock LOCALPART
  authd user import [--format csv|jsonl] FILE
  authd user list
  authd user email add|remove LOCALPART ADDR`

func runUser(ctx context.Context, env *environment, args []string) error {
	if len(args) == 0 {
		return errors.New(userUsage)
	}
	switch args[0] {
	case "create":
		return runUserCreate(ctx, env, args[1:])
	case "passwd":
		return runUserPasswd(ctx, env, args[1:])
	case "deactivate":
		return runUserDeactivate(ctx, env, args[1:])
	case "list":
		return runUserList(ctx, env, args[1:])
	case "admin":
		return runUserAdmin(ctx, env, args[1:])
	case "import":
		return runUserImport(ctx, env, args[1:])
	case "lock", "unlock":
		return runUserLock(ctx, env, args[0], args[1:])
	case "email":
		return runUserEmail(ctx, env, args[1:])
	default:
		return fmt.Errorf("unknown user command %q\n%s", args[0], userUsage)
	}
}

// userCommand is the shared setup of the user subcommands: flags, config,
// the store and the positional arguments.
type userCommand struct {
	cfg   config
	fs    *flag.FlagSet
	check func() error
}

// newUserCommand sets up the user subcommand name, which reads the
// settings tagged with any of tags.
func newUserCommand(env *environment, name string, tags commands) *userCommand {
	c := &userCommand{fs: newFlagSet("user "+name, env.stderr)}
	c.check = c.cfg.flags(c.fs, env.getenv, tags)
	return c
}

// parse parses flags wherever they stand among the arguments (Go's flag
// package stops at the first positional one) and checks the count of
// positional arguments.
func (c *userCommand) parse(args []string, want int, usage string) ([]string, error) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			return nil, err
		}
		args = c.fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != want {
		return nil, errors.New("usage: " + usage)
	}
	return pos, c.check()
}

func (c *userCommand) open(ctx context.Context) (appStore, error) {
	// The serve that delivers the outbox finds the CLI's events when it
	// next looks.
	st, err := openStore(ctx, c.cfg.DatabaseURL, outboxHook{on: c.cfg.Outbox.URL != ""})
	if err != nil {
		return nil, err
	}
	if err := checkSchema(ctx, st); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// openUser opens the store and finds the user a command names; the caller
// closes the store.
func (c *userCommand) openUser(ctx context.Context, name string) (appStore, store.User, error) {
	st, err := c.open(ctx)
	if err != nil {
		return nil, store.User{}, err
	}
	u, err := findUser(ctx, st, c.cfg.ServerName, name)
	if err != nil {
		st.Close()
		return nil, store.User{}, err
	}
	return st, u, nil
}

// findUser resolves a localpart or full user ID to a stored user, matching
// case-insensitively as login does.
func findUser(ctx context.Context, st appStore, serverName, name string) (store.User, error) {
	id := name
	if !strings.HasPrefix(id, "@") {
		id = "@" + id + ":" + serverName
	}
	u, err := st.FindUserByLogin(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return u, fmt.Errorf("no user %s", id)
	}
	return u, err
}

func runUserCreate(ctx context.Context, env *environment, args []string) error {
	c := newUserCommand(env, "create", forUser|forUserPassword)
	email := c.fs.String("email", "", "bind this email address to the user")
	fromStdin := c.fs.Bool("password-stdin", false, "read the password from standard input instead of prompting")
	admin := c.fs.Bool("admin", false, "make the user an admin: its access tokens authorise the admin API")
	pos, err := c.parse(args, 1, "authd user create LOCALPART [--email ADDR] [--password-stdin] [--admin]")
	if err != nil {
		return err
	}
	id, err := newUserID(pos[0], c.cfg.ServerName)
	if err != nil {
		return err
	}
	var threepids []store.ThreePID
	now := time.Now().UTC()
	if *email != "" {
		addr, err := store.CanonicalAddress(store.MediumEmail, *email)
		if err != nil {
			return fmt.Errorf("--email: %q is not an email address", *email)
		}
		threepids = append(threepids, store.ThreePID{Medium: store.MediumEmail, Address: addr, UserID: id, AddedAt: now})
	}
	hash, err := readAndHash(env, c.cfg.BcryptCost, c.cfg.Pepper, *fromStdin)
	if err != nil {
		return err
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	err = st.CreateUser(ctx, store.User{ID: id, PasswordHash: hash, CreatedAt: now, Admin: *admin}, threepids...)
	if errors.Is(err, store.ErrConflict) {
		if _, ferr := st.FindUserByID(ctx, id); ferr == nil {
			return fmt.Errorf("user %s already exists", id)
		}
		return fmt.Errorf("email %s is already bound to another user", threepids[0].Address)
	}
	if err != nil {
		return err
	}
	if *admin {
		fmt.Fprintf(env.stdout, "created %s (admin)\n", id)
		return nil
	}
	fmt.Fprintf(env.stdout, "created %s\n", id)
	return nil
}

// runUserAdmin sets or clears a user's admin flag.
func runUserAdmin(ctx context.Context, env *environment, args []string) error {
	usage := "authd user admin LOCALPART on|off"
	c := newUserCommand(env, "admin", forUser)
	pos, err := c.parse(args, 2, usage)
	if err != nil {
		return err
	}
	on, err := parseOnOff(pos[1])
	if err != nil {
		return errors.New("usage: " + usage)
	}
	st, u, err := c.openUser(ctx, pos[0])
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.ModifyUser(ctx, store.UserChange{UserID: u.ID, Now: time.Now().UTC(), Admin: &on}); err != nil {
		return err
	}
	if on {
		fmt.Fprintf(env.stdout, "%s is an admin\n", u.ID)
	} else {
		fmt.Fprintf(env.stdout, "%s is no longer an admin\n", u.ID)
	}
	return nil
}

// runUserLock locks or unlocks an account. A lock keeps the sessions:
// every request but logout is refused (M_USER_LOCKED), on every replica at
// once, until the unlock.
func runUserLock(ctx context.Context, env *environment, action string, args []string) error {
	c := newUserCommand(env, action, forUser)
	pos, err := c.parse(args, 1, "authd user "+action+" LOCALPART")
	if err != nil {
		return err
	}
	st, u, err := c.openUser(ctx, pos[0])
	if err != nil {
		return err
	}
	defer st.Close()
	locked := action == "lock"
	if locked && u.Deactivated() {
		return fmt.Errorf("%s is deactivated", u.ID)
	}
	if _, err := st.ModifyUser(ctx, store.UserChange{UserID: u.ID, Now: time.Now().UTC(), Locked: &locked}); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "%sed %s\n", action, u.ID)
	return nil
}

func runUserPasswd(ctx context.Context, env *environment, args []string) error {
	c := newUserCommand(env, "passwd", forUser|forUserPassword)
	fromStdin := c.fs.Bool("password-stdin", false, "read the password from standard input instead of prompting")
	keep := c.fs.Bool("keep-sessions", false, "keep the user's sessions instead of logging every device out")
	pos, err := c.parse(args, 1, "authd user passwd LOCALPART [--password-stdin] [--keep-sessions]")
	if err != nil {
		return err
	}
	st, u, err := c.openUser(ctx, pos[0])
	if err != nil {
		return err
	}
	defer st.Close()
	hash, err := readAndHash(env, c.cfg.BcryptCost, c.cfg.Pepper, *fromStdin)
	if err != nil {
		return err
	}
	if err := st.UpdatePasswordHash(ctx, u.ID, hash); err != nil {
		return err
	}
	msg := "password changed for " + u.ID
	if !*keep {
		// A password change usually means the old one leaked: end every
		// session made with it, as Synapse's admin API does by default.
		n, err := st.DeleteAllDevices(ctx, u.ID)
		if err != nil {
			return err
		}
		msg += fmt.Sprintf("; %d device(s) logged out", n)
	}
	fmt.Fprintln(env.stdout, msg)
	return nil
}

func runUserDeactivate(ctx context.Context, env *environment, args []string) error {
	c := newUserCommand(env, "deactivate", forUser)
	pos, err := c.parse(args, 1, "authd user deactivate LOCALPART")
	if err != nil {
		return err
	}
	st, u, err := c.openUser(ctx, pos[0])
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.DeactivateUser(ctx, u.ID, time.Now().UTC(), false, store.UIAGrant{}); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "deactivated %s; every session revoked, every email address unbound, the password removed\n", u.ID)
	return nil
}

func runUserList(ctx context.Context, env *environment, args []string) error {
	c := newUserCommand(env, "list", forUser)
	if _, err := c.parse(args, 0, "authd user list"); err != nil {
		return err
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	users, err := st.ListUsers(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER ID\tSTATUS\tCREATED\tEMAIL")
	for _, u := range users {
		status := "active"
		switch {
		case u.Deactivated():
			status = "deactivated"
		case u.Locked():
			status = "locked"
		}
		if u.Admin {
			status += ",admin"
		}
		tps, err := st.ListThreePIDs(ctx, u.ID)
		if err != nil {
			return err
		}
		var emails []string
		for _, t := range tps {
			emails = append(emails, t.Address)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.ID, status, u.CreatedAt.UTC().Format(time.RFC3339), strings.Join(emails, ","))
	}
	return tw.Flush()
}

func runUserEmail(ctx context.Context, env *environment, args []string) error {
	usage := "authd user email add|remove LOCALPART ADDR"
	if len(args) == 0 || (args[0] != "add" && args[0] != "remove") {
		return errors.New("usage: " + usage)
	}
	action := args[0]
	c := newUserCommand(env, "email "+action, forUser)
	pos, err := c.parse(args[1:], 2, usage)
	if err != nil {
		return err
	}
	addr, err := store.CanonicalAddress(store.MediumEmail, pos[1])
	if err != nil {
		return fmt.Errorf("%q is not an email address", pos[1])
	}
	st, u, err := c.openUser(ctx, pos[0])
	if err != nil {
		return err
	}
	defer st.Close()
	if action == "add" {
		err = st.AddThreePID(ctx, store.ThreePID{Medium: store.MediumEmail, Address: addr, UserID: u.ID, AddedAt: time.Now().UTC()})
		if errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("email %s is already bound", addr)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "bound %s to %s\n", addr, u.ID)
		return nil
	}
	err = st.DeleteThreePID(ctx, u.ID, store.MediumEmail, addr)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("email %s is not bound to %s", addr, u.ID)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "unbound %s from %s\n", addr, u.ID)
	return nil
}

// newUserID builds the ID of a new user from a localpart (or a full ID on
// this server). Like Synapse's registration it lower-cases the localpart,
// and it holds new IDs to the spec's grammar: a-z 0-9 . _ = - / + and at most
// 255 bytes in all.
func newUserID(name, serverName string) (string, error) {
	if strings.HasPrefix(name, "@") {
		if local, server, ok := strings.Cut(name[1:], ":"); ok && server == serverName {
			name = "@" + strings.ToLower(local) + ":" + server
		}
	} else {
		name = strings.ToLower(name)
	}
	return store.NewUserID(name, serverName)
}

// readAndHash reads a new password, from stdin or a prompt without echo,
// and hashes it. Passwords never come from argv, where ps would show them.
func readAndHash(env *environment, cost int, pepper []byte, fromStdin bool) (string, error) {
	var pw string
	if fromStdin {
		b, err := io.ReadAll(io.LimitReader(env.stdin, password.MaxLen+3))
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		// One trailing newline is the end of the line, not the password.
		pw = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	} else {
		f, ok := env.stdin.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", errors.New("standard input is not a terminal: pass --password-stdin to read the password from it")
		}
		first, err := prompt(env, f, "Password: ")
		if err != nil {
			return "", err
		}
		again, err := prompt(env, f, "Confirm password: ")
		if err != nil {
			return "", err
		}
		if first != again {
			return "", errors.New("the passwords do not match")
		}
		pw = first
	}
	h, err := password.NewHasher(cost, pepper)
	if err != nil {
		return "", err
	}
	hash, err := h.Hash(pw)
	switch {
	case errors.Is(err, password.ErrEmpty):
		return "", errors.New("the password is empty")
	case errors.Is(err, password.ErrTooLong):
		return "", fmt.Errorf("the password is longer than %d bytes", password.MaxLen)
	}
	return hash, err
}

func prompt(env *environment, f *os.File, label string) (string, error) {
	fmt.Fprint(env.stderr, label)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(env.stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(b), nil
}
