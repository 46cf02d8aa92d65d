// Command authd is the Matrix session service: it serves login, logout and
// whoami for a homeserver, and manages its users and schema from the
// command line. Run `authd help` for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "authd:", err)
		}
		os.Exit(1)
	}
}

const usage = `Usage: authd COMMAND [flags]

Commands:
  serve                                   run the service
  migrate [up|version]                    apply or show schema migrations
  user create LOCALPART [--email ADDR] [--password-stdin] [--admin]
  user passwd LOCALPART [--password-stdin] [--keep-sessions]
  user deactivate LOCALPART               also revokes every session, unbinds
                                          the emails and removes the password
  user admin LOCALPART on|off             the admin flag (the admin API)
  user lock|unlock LOCALPART              lock keeps sessions, refuses all
                                          but logout
  user import [--format csv|jsonl] FILE   import accounts with their bcrypt
                                          hashes
  user list
  admin token issue [--name NAME] [--expires DURATION]
                                          a token for the admin API alone
  admin token list | revoke ID
  user email add|remove LOCALPART ADDR
  healthcheck                             exit 0 when /readyz says ready

Configuration comes from AUTHD_* environment variables, or flags of the
same names (AUTHD_DATABASE_URL is --database-url). See docs/configuration.md.
`

// run is authd's whole program: it parses args, dispatches the subcommand and
// returns its error. Everything it needs from the process is passed in, so
// that tests can run it in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	env := &environment{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return runServe(ctx, env, rest)
	case "migrate":
		return runMigrate(ctx, env, rest)
	case "user":
		return runUser(ctx, env, rest)
	case "admin":
		return runAdmin(ctx, env, rest)
	case "healthcheck":
		return runHealthcheck(ctx, env, rest)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// environment is what a subcommand gets from the process.
type environment struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}
