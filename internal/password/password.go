// Package password hashes and verifies passwords in authd's versioned format.
//
// A hash reads "$authd-v1$" followed by a bcrypt hash of
// base64(HMAC-SHA-256(pepper, password)). Pre-hashing makes every byte of the
// password count: bcrypt alone reads only the first 72 bytes, so two
// passwords sharing those would both log in. The version prefix lets authd
// change the scheme or the cost later and upgrade each user's hash on their
// next successful login (see Result.NeedsRehash). Plain bcrypt hashes
// ($2a$, $2b$, $2y$, as imported from Synapse) are verified as they are and
// always flagged for a rehash; they are checked as Synapse made them (see
// SetImportedPepper).
//
// Every verification costs the same bcrypt work, whatever the stored hash's
// cost and whether there is a stored hash at all: the Hasher pads each one
// to the work of one comparison at its work cost, the highest of the
// configured cost and the stored costs it has been told of (NoteStoredCost).
// So a wrong password, an unknown user and a hash imported at another cost
// cannot be told apart by timing.
package password

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"
)

// MaxLen is the longest password, in bytes, that authd hashes. Longer ones
// are refused: they are not passwords but an attempt to burn CPU.
const MaxLen = 1024

const prefixV1 = "$authd-v1$"

// ErrTooLong is returned by Hash for a password longer than MaxLen.
var ErrTooLong = fmt.Errorf("password: longer than %d bytes", MaxLen)

// ErrEmpty is returned by Hash for an empty password.
var ErrEmpty = errors.New("password: empty")

// Hasher hashes and verifies passwords at one bcrypt cost with one pepper.
type Hasher struct {
	cost   int
	pepper []byte
	// importedPepper is what Synapse appended to every password before
	// bcrypt (its password_config.pepper): plain bcrypt hashes are checked
	// with it (see SetImportedPepper).
	importedPepper []byte
	// work is the bcrypt cost whose work every verification spends: the
	// configured cost, raised by NoteStoredCost to the highest stored one.
	work atomic.Int32
	// dummies[c] is a hash at cost c of a password no login sends, made on
	// first use (see Warm): what unknown users are checked against, and
	// what pads a cheaper comparison up to the work cost.
	dummies [bcrypt.MaxCost + 1]func() []byte
	// onCompare, when set, is told the cost of every bcrypt comparison.
	onCompare func(cost int)
	// warmNS is how long Warm took to make the work cost's dummy hash.
	warmNS atomic.Int64
}

// SetCompareHook makes the Hasher call fn with the cost of every bcrypt
// comparison it performs, dummy ones included: the work a login costs,
// which tests and metrics count. Call it before the Hasher is used.
func (h *Hasher) SetCompareHook(fn func(cost int)) { h.onCompare = fn }

// compare runs one bcrypt comparison and reports it to the hook.
func (h *Hasher) compare(hash, password []byte) error {
	if h.onCompare != nil {
		cost, err := bcrypt.Cost(hash)
		if err != nil {
			cost = 0
		}
		h.onCompare(cost)
	}
	return bcrypt.CompareHashAndPassword(hash, password)
}

// compareAtWork runs the comparison of a stored hash, then pads its work up
// to the work cost's: bcrypt's work doubles with each cost step, so one
// dummy comparison at each cost from the hash's own up to the work cost
// adds exactly what is missing (2^c + 2^c + 2^(c+1) + ... + 2^(w-1) = 2^w).
func (h *Hasher) compareAtWork(hash, password []byte) error {
	cost, err := bcrypt.Cost(hash)
	if err != nil {
		// Not a bcrypt hash: spend the whole work on dummies instead.
		h.VerifyDummy()
		return err
	}
	h.NoteStoredCost(cost)
	err = h.compare(hash, password)
	h.pad(cost)
	return err
}

// pad spends the work that a comparison at cost lacks to reach the work
// cost's.
func (h *Hasher) pad(cost int) {
	filler := h.prehash("x")
	for c := cost; c < h.WorkCost(); c++ {
		_ = h.compare(h.dummies[c](), filler)
	}
}

// NewHasher returns a Hasher at the given bcrypt cost (4 to 31). The pepper
// may be empty; changing it later invalidates every hash made with it.
func NewHasher(cost int, pepper []byte) (*Hasher, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("password: bcrypt cost %d outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	h := &Hasher{cost: cost, pepper: append([]byte(nil), pepper...)}
	h.work.Store(int32(cost))
	for c := bcrypt.MinCost; c <= bcrypt.MaxCost; c++ {
		h.dummies[c] = sync.OnceValue(func() []byte {
			b, err := bcrypt.GenerateFromPassword(h.prehash("authd dummy password, never matches a login"), c)
			if err != nil {
				// Only an invalid cost fails, and c is a valid one.
				panic(err)
			}
			return b
		})
	}
	return h, nil
}

// SetImportedPepper sets the pepper that plain bcrypt hashes were made with
// by the server they were imported from: Synapse hashes bcrypt(NFKC(password)
// + pepper) with its password_config.pepper, empty by default. Call it
// before the Hasher is used.
func (h *Hasher) SetImportedPepper(pepper []byte) {
	h.importedPepper = append([]byte(nil), pepper...)
}

// Warm makes the dummy hashes verifications need now, rather than during
// the first login that needs each one, which would take longer than the
// others: one at each cost up to the work cost (stored hashes below it are
// padded from their own cost up). Together they cost about as much as one
// hash at the work cost. A server calls it at start, after NoteStoredCost.
func (h *Hasher) Warm() {
	work := h.WorkCost()
	for c := bcrypt.MinCost; c < work; c++ {
		h.dummies[c]()
	}
	start := time.Now()
	h.dummies[work]()
	h.warmNS.Store(int64(time.Since(start)))
}

// VerifyEstimate is how long Warm took to make one hash at the work cost,
// which is what a verification costs: a first estimate for those who
// schedule verifications, before any was timed. 0 before Warm ran (or
// when Warm found the dummy already made).
func (h *Hasher) VerifyEstimate() time.Duration { return time.Duration(h.warmNS.Load()) }

// NoteStoredCost tells the Hasher that a stored hash has this bcrypt cost.
// A cost above the work cost raises it, so that from then on every
// verification, an unknown user's included, costs what checking that hash
// costs. A server calls it at start for every cost in its store (then Warm),
// and Verify calls it for a hash above the work cost it meets.
func (h *Hasher) NoteStoredCost(cost int) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return
	}
	for {
		w := h.work.Load()
		if int32(cost) <= w || h.work.CompareAndSwap(w, int32(cost)) {
			return
		}
	}
}

// WorkCost returns the bcrypt cost whose work every verification spends:
// Cost, or a higher stored cost given to NoteStoredCost.
func (h *Hasher) WorkCost() int { return int(h.work.Load()) }

// StoredCost reads the bcrypt cost of a stored hash, or of its first bytes
// up to the cost ("$authd-v1$$2a$12$", "$2b$10$"). ok is false for anything
// else.
func StoredCost(hash string) (cost int, ok bool) {
	hash = strings.TrimPrefix(hash, prefixV1)
	// "$2a$12$": the version, then two decimal digits.
	if len(hash) < 7 || hash[0] != '$' || hash[1] != '2' || hash[3] != '$' || hash[6] != '$' ||
		!strings.Contains("aby", hash[2:3]) || hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9' {
		return 0, false
	}
	cost = int(hash[4]-'0')*10 + int(hash[5]-'0')
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return 0, false
	}
	return cost, true
}

// Cost returns the bcrypt cost new hashes are made with.
func (h *Hasher) Cost() int { return h.cost }

// Hash returns the versioned hash of a password.
func (h *Hasher) Hash(password string) (string, error) {
	if password == "" {
		return "", ErrEmpty
	}
	if len(password) > MaxLen {
		return "", ErrTooLong
	}
	b, err := bcrypt.GenerateFromPassword(h.prehash(password), h.cost)
	if err != nil {
		return "", fmt.Errorf("password: %w", err)
	}
	return prefixV1 + string(b), nil
}

// Result is the outcome of Verify.
type Result struct {
	// OK is true when the password matches.
	OK bool
	// NeedsRehash is true when the password matched a hash in an older
	// scheme or at another cost: the caller should store Hash(password).
	NeedsRehash bool
}

// Verify checks a password against a stored hash. A malformed or unknown
// hash never matches; it is reported as an error so that it can be logged.
func (h *Hasher) Verify(hash, password string) (Result, error) {
	if len(password) > MaxLen {
		// Spend the same work as a real check, so that length does not
		// show in the timing, and refuse.
		h.VerifyDummy()
		return Result{}, nil
	}
	switch {
	case strings.HasPrefix(hash, prefixV1):
		inner := []byte(hash[len(prefixV1):])
		err := h.compareAtWork(inner, h.prehash(password))
		if err != nil {
			return mismatch(err)
		}
		cost, err := bcrypt.Cost(inner)
		return Result{OK: true, NeedsRehash: err != nil || cost != h.cost}, nil
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		// Checked the way Synapse made it: the password in Unicode
		// normalisation form KC, then the imported pepper. (Dendrite hashes
		// the password as typed: the same bytes unless it holds
		// compatibility characters, such as full-width letters.) bcrypt
		// reads only 72 bytes, so a longer password could match by its
		// prefix alone: refuse those. The pepper may run past the 72:
		// Synapse's bcrypt cut it there, and so must this check.
		normalized := norm.NFKC.String(password)
		if len(normalized) > 72 {
			h.VerifyDummy()
			return Result{}, nil
		}
		input := append([]byte(normalized), h.importedPepper...)
		if len(input) > 72 {
			input = input[:72]
		}
		if err := h.compareAtWork([]byte(hash), input); err != nil {
			return mismatch(err)
		}
		return Result{OK: true, NeedsRehash: true}, nil
	default:
		h.VerifyDummy()
		return Result{}, errors.New("password: unknown hash format")
	}
}

// VerifyDummy spends the work of one verification against a hash that never
// matches. Login calls it for unknown users so that they cost the same time
// as a wrong password.
func (h *Hasher) VerifyDummy() {
	_ = h.compare(h.dummies[h.cost](), h.prehash("x"))
	h.pad(h.cost)
}

func mismatch(err error) (Result, error) {
	if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		return Result{}, nil
	}
	return Result{}, fmt.Errorf("password: %w", err)
}

// prehash condenses the password to 44 base64 characters, below bcrypt's
// 72-byte limit and free of NUL bytes.
func (h *Hasher) prehash(password string) []byte {
	m := hmac.New(sha256.New, h.pepper)
	m.Write([]byte(password))
	sum := m.Sum(nil)
	out := make([]byte, base64.StdEncoding.EncodedLen(len(sum)))
	base64.StdEncoding.Encode(out, sum)
	return out
}
