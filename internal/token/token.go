// Package token mints and checks authd's bearer tokens.
//
// A token reads <prefix>_<random>_<checksum>: the prefix names the kind
// (access, refresh, login or admin), random is 32 base62 characters from crypto/rand
// (about 190 bits), and checksum is the CRC-32 (IEEE) of "<prefix>_<random>"
// in 6 base62 characters. The checksum lets authd reject a mistyped or
// truncated token, and secret scanners recognise one, before any database
// work. Stores keep only Hash(token).
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"strings"
)

// Kind is what a token is for.
type Kind string

// The token kinds, each with its own prefix.
const (
	Access  Kind = "ada" // access token
	Refresh Kind = "adr" // refresh token
	// Login is a single-use login token (m.login.token), which an
	// authenticated client asks for so that a new client can log in
	// without the password.
	Login Kind = "adl"
	// Admin is an admin token for automation, issued by the CLI: it
	// belongs to no user or device and authorises the admin API only.
	Admin Kind = "adm"
)

const (
	alphabet    = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	randomLen   = 32
	checksumLen = 6
	// MaxLen is the length of every token authd mints; longer input is
	// rejected before it is parsed.
	MaxLen = 3 + 1 + randomLen + 1 + checksumLen
)

// ErrMalformed is returned by Check for a string that is not a well-formed
// token of the wanted kind.
var ErrMalformed = errors.New("token: malformed")

// New mints a token of the given kind.
func New(kind Kind) string {
	var b strings.Builder
	b.Grow(MaxLen)
	b.WriteString(string(kind))
	b.WriteByte('_')
	var buf [64]byte
	for n := 0; n < randomLen; {
		rand.Read(buf[:]) // never fails (crypto/rand panics instead)
		for _, c := range buf {
			// 248 = 4*62: rejecting larger bytes keeps every character
			// equally likely.
			if c >= 248 {
				continue
			}
			b.WriteByte(alphabet[c%62])
			if n++; n == randomLen {
				break
			}
		}
	}
	b.WriteByte('_')
	b.WriteString(checksum(b.String()[:len(kind)+1+randomLen]))
	return b.String()
}

// Check reports whether s is a well-formed token of the given kind with a
// correct checksum. It does no I/O, so a caller can refuse a garbled token
// before it touches the database.
func Check(kind Kind, s string) error {
	if len(s) != MaxLen || !strings.HasPrefix(s, string(kind)+"_") {
		return ErrMalformed
	}
	body := s[:len(kind)+1+randomLen]
	if s[len(body)] != '_' {
		return ErrMalformed
	}
	for i := len(kind) + 1; i < len(body); i++ {
		if strings.IndexByte(alphabet, body[i]) < 0 {
			return ErrMalformed
		}
	}
	if s[len(body)+1:] != checksum(body) {
		return ErrMalformed
	}
	return nil
}

// Hash returns the SHA-256 digest under which a token is stored.
func Hash(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func checksum(s string) string {
	v := crc32.ChecksumIEEE([]byte(s))
	var out [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = alphabet[v%62]
		v /= 62
	}
	return string(out[:])
}
