package store

import (
	"errors"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/cases"
)

// Medium names the kind of a third-party identifier.
type Medium string

// The third-party media authd knows.
const (
	MediumEmail  Medium = "email"
	MediumMSISDN Medium = "msisdn"
)

// ThreePID binds a canonical third-party address to a user.
type ThreePID struct {
	Medium  Medium
	Address string // canonical form, e.g. a lower-cased email address
	UserID  string
	AddedAt time.Time
}

// ErrInvalidAddress is returned by CanonicalAddress for an address that is
// not a valid one of its medium.
var ErrInvalidAddress = errors.New("invalid third-party address")

// CanonicalAddress returns the form in which a third-party address is
// stored and looked up. Emails are trimmed, the local part case-folded and
// the domain lower-cased (spec appendix, 3PID Types). authd binds no phone
// numbers yet, so an msisdn, like an unknown medium, is ErrInvalidAddress.
func CanonicalAddress(medium Medium, address string) (string, error) {
	if medium != MediumEmail {
		return "", ErrInvalidAddress
	}
	address = strings.TrimSpace(address)
	local, domain, ok := strings.Cut(address, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") || len(address) > 254 ||
		strings.ContainsFunc(address, unicode.IsControl) {
		return "", ErrInvalidAddress
	}
	return cases.Fold().String(local) + "@" + strings.ToLower(domain), nil
}
