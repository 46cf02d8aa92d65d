package store

import (
	"errors"
	"strings"
	"unicode"

	"golang.org/x/text/cases"
)

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
