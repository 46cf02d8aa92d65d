package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/authd/authd/internal/password"
	"github.com/authd/authd/internal/store"
)

// importBatch is how many users one transaction of `user import` writes.
const importBatch = 1000

// importLine is one account of an import file, as read.
type importLine struct {
	User         string   `json:"user"`
	PasswordHash string   `json:"password_hash"`
	Password     string   `json:"password"`
	Emails       []string `json:"emails"`
	Admin        bool     `json:"admin"`
}

// importTally counts what an import did.
type importTally struct{ created, existed, failed int }

// runUserImport imports accounts from a CSV or JSON-lines file (or standard
// input, "-"), keeping the bcrypt hashes they carry, in transactions of
// importBatch users. Existing users are left as they are, so that running
// the same file again changes nothing. A bad line is reported with its
// number and skipped; the exit status is 1 when any line failed.
func runUserImport(ctx context.Context, env *environment, args []string) error {
	c := newUserCommand(env, "import", forUser|forUserPassword)
	format := c.fs.String("format", "", "csv or jsonl (default: from the file name's extension)")
	pos, err := c.parse(args, 1, "authd user import [--format csv|jsonl] FILE")
	if err != nil {
		return err
	}
	name := pos[0]
	if *format == "" {
		switch {
		case strings.HasSuffix(name, ".csv"):
			*format = "csv"
		case strings.HasSuffix(name, ".jsonl"), strings.HasSuffix(name, ".ndjson"):
			*format = "jsonl"
		default:
			return errors.New("give --format csv or --format jsonl (the file name does not say)")
		}
	}
	var in io.Reader = env.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	var next func() (int, importLine, error)
	switch *format {
	case "csv":
		next, err = csvLines(in)
	case "jsonl":
		next = jsonLines(in)
	default:
		return fmt.Errorf("--format %q: want csv or jsonl", *format)
	}
	if err != nil {
		return err
	}
	// Passwords given in the clear are hashed as the CLI hashes them.
	hasher, err := password.NewHasher(c.cfg.BcryptCost, c.cfg.Pepper)
	if err != nil {
		return err
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()

	var tally importTally
	var batch []store.ImportedUser
	var lineNos []int
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		outcomes, err := st.ImportUsers(ctx, batch)
		if err != nil {
			return fmt.Errorf("lines %d to %d: %w", lineNos[0], lineNos[len(lineNos)-1], err)
		}
		for i, o := range outcomes {
			switch o {
			case store.ImportCreated:
				tally.created++
			case store.ImportExists:
				tally.existed++
			case store.ImportConflict:
				tally.failed++
				fmt.Fprintf(env.stderr, "line %d: %s: an email address is bound to another user; not imported\n", lineNos[i], batch[i].User.ID)
			}
		}
		batch, lineNos = batch[:0], lineNos[:0]
		return nil
	}
	now := time.Now().UTC()
	for {
		n, l, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			var u store.ImportedUser
			u, err = importedUser(l, c.cfg.ServerName, hasher, now)
			if err == nil {
				batch, lineNos = append(batch, u), append(lineNos, n)
			}
		}
		if err != nil {
			var fatal fatalReadError
			if errors.As(err, &fatal) {
				return err
			}
			tally.failed++
			fmt.Fprintf(env.stderr, "line %d: %v\n", n, err)
			continue
		}
		if len(batch) == importBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "imported %d users; %d existed already; %d lines failed\n", tally.created, tally.existed, tally.failed)
	if tally.failed > 0 {
		return fmt.Errorf("%d lines failed (see above)", tally.failed)
	}
	return nil
}

// fatalReadError is a failure to read the input at all (not a bad line).
type fatalReadError struct{ err error }

func (e fatalReadError) Error() string { return e.err.Error() }
func (e fatalReadError) Unwrap() error { return e.err }

// importedUser checks one line and builds its account. The hash is kept
// as it is when it is a whole bcrypt hash ($2a$, $2b$, $2y$) or authd's
// own; a password is hashed here. Errors name the problem, never the
// password or the hash.
func importedUser(l importLine, serverName string, hasher *password.Hasher, now time.Time) (store.ImportedUser, error) {
	id, err := store.NewUserID(l.User, serverName)
	if err != nil {
		return store.ImportedUser{}, err
	}
	u := store.User{ID: id, CreatedAt: now, Admin: l.Admin}
	switch {
	case l.PasswordHash != "" && l.Password != "":
		return store.ImportedUser{}, errors.New("give password_hash or password, not both")
	case l.PasswordHash != "":
		if !wholeHash(l.PasswordHash) {
			return store.ImportedUser{}, errors.New("password_hash is not a bcrypt hash ($2a$, $2b$ or $2y$ and 53 more characters)")
		}
		u.PasswordHash = l.PasswordHash
	case l.Password != "":
		if u.PasswordHash, err = hasher.Hash(l.Password); err != nil {
			return store.ImportedUser{}, errors.New("password: empty or longer than 1024 bytes")
		}
	default:
		return store.ImportedUser{}, errors.New("no password_hash or password")
	}
	out := store.ImportedUser{User: u}
	for _, e := range l.Emails {
		addr, err := store.CanonicalAddress(store.MediumEmail, e)
		if err != nil {
			return store.ImportedUser{}, fmt.Errorf("%q is not an email address", e)
		}
		out.ThreePIDs = append(out.ThreePIDs, store.ThreePID{Medium: store.MediumEmail, Address: addr, UserID: id, AddedAt: now})
	}
	return out, nil
}

// wholeHash reports whether h is a complete bcrypt hash, plain or in
// authd's format: the version and cost (password.StoredCost) and the 53
// characters of salt and digest in bcrypt's base64 alphabet.
func wholeHash(h string) bool {
	if _, ok := password.StoredCost(h); !ok {
		return false
	}
	plain := strings.TrimPrefix(h, "$authd-v1$")
	if len(plain) != 60 {
		return false
	}
	for _, r := range plain[7:] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '/') {
			return false
		}
	}
	return true
}

// csvLines reads a CSV file whose header names its columns: user, and
// password_hash or password, optionally emails (separated by ';') and
// admin (true/false, 1/0, yes/no or empty).
func csvLines(in io.Reader) (func() (int, importLine, error), error) {
	r := csv.NewReader(in)
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("the CSV header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.ToLower(h))
		switch h {
		case "user", "password_hash", "password", "emails", "admin":
			col[h] = i
		default:
			return nil, fmt.Errorf("the CSV header names %q: the columns are user, password_hash, password, emails, admin", h)
		}
	}
	if _, ok := col["user"]; !ok {
		return nil, errors.New("the CSV header has no user column")
	}
	return func() (int, importLine, error) {
		rec, err := r.Read()
		line, _ := r.FieldPos(0)
		if errors.Is(err, io.EOF) {
			return line, importLine{}, io.EOF
		}
		if err != nil {
			var perr *csv.ParseError
			if errors.As(err, &perr) {
				return perr.Line, importLine{}, errors.New("not a CSV record")
			}
			return line, importLine{}, fatalReadError{err}
		}
		field := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		l := importLine{User: field("user"), PasswordHash: field("password_hash")}
		if i, ok := col["password"]; ok && i < len(rec) {
			l.Password = rec[i] // as given: spaces may be part of it
		}
		for _, e := range strings.Split(field("emails"), ";") {
			if e = strings.TrimSpace(e); e != "" {
				l.Emails = append(l.Emails, e)
			}
		}
		switch strings.ToLower(field("admin")) {
		case "", "false", "0", "no":
		case "true", "1", "yes":
			l.Admin = true
		default:
			return line, importLine{}, errors.New("admin is not true or false")
		}
		return line, l, nil
	}, nil
}

// jsonLines reads one JSON object per line; blank lines are skipped.
func jsonLines(in io.Reader) func() (int, importLine, error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	return func() (int, importLine, error) {
		for sc.Scan() {
			n++
			text := strings.TrimSpace(sc.Text())
			if text == "" {
				continue
			}
			var l importLine
			dec := json.NewDecoder(strings.NewReader(text))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&l); err != nil {
				return n, importLine{}, errors.New("not a JSON object with user, password_hash or password, emails, admin")
			}
			return n, l, nil
		}
		if err := sc.Err(); err != nil {
			return n, importLine{}, fatalReadError{err}
		}
		return n, importLine{}, io.EOF
	}
}
