// Package password hashes and verifies passwords in authd's versioned format.
//
// A hash reads "$authd-v1$" followed by a bcrypt hash of
// base64(HMAC-SHA-256(pepper, password)). Pre-hashing makes every byte of the
// password count: bcrypt alone reads only the first 72 bytes, so two
// passwords sharing those would both log in. The version prefix lets authd
// change the scheme or the cost later and upgrade each user's hash on their
// next successful login (see Result.NeedsRehash). Plain bcrypt hashes
// ($2a$, $2b$, $2y$, as imported from Synapse) are verified as they are and
// always flagged for a rehash.
package password

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
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
	// dummy is a hash of a password no login sends, at this cost, made on
	// first use (see Warm).
	dummy func() []byte
	// onCompare, when set, is told the cost of every bcrypt comparison.
	onCompare func(cost int)
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

// NewHasher returns a Hasher at the given bcrypt cost (4 to 31). The pepper
// may be empty; changing it later invalidates every hash made with it.
func NewHasher(cost int, pepper []byte) (*Hasher, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("password: bcrypt cost %d outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	h := &Hasher{cost: cost, pepper: append([]byte(nil), pepper...)}
	h.dummy = sync.OnceValue(func() []byte {
		b, err := bcrypt.GenerateFromPassword(h.prehash("authd dummy password, never matches a login"), cost)
		if err != nil {
			// Only an invalid cost fails, and the cost was checked above.
			panic(err)
		}
		return b
	})
	return h, nil
}

// Warm makes the dummy hash now rather than on the first unknown-user login,
// which would otherwise take twice as long as a wrong password. A server
// calls it once at start.
func (h *Hasher) Warm() { h.dummy() }

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
		err := h.compare(inner, h.prehash(password))
		if err != nil {
			return mismatch(err)
		}
		cost, err := bcrypt.Cost(inner)
		return Result{OK: true, NeedsRehash: err != nil || cost != h.cost}, nil
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		// A plain bcrypt hash reads only 72 bytes of the password, so a
		// longer password could match by its prefix alone: refuse those.
		if len(password) > 72 {
			h.VerifyDummy()
			return Result{}, nil
		}
		if err := h.compare([]byte(hash), []byte(password)); err != nil {
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
	_ = h.compare(h.dummy(), h.prehash("x"))
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
