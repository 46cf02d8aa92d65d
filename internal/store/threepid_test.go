package store

import (
	"errors"
	"testing"
)

func TestCanonicalAddress(t *testing.T) {
	tests := []struct {
		name    string
		medium  Medium
		in      string
		want    string
		wantErr bool
	}{
		{"Lowercase", MediumEmail, "alice@example.org", "alice@example.org", false},
		{"Mixed", MediumEmail, "  Alice.Smith@Example.ORG ", "alice.smith@example.org", false},
		{"Fold", MediumEmail, "STRASSE@example.org", "strasse@example.org", false},
		{"NoAt", MediumEmail, "alice.example.org", "", true},
		{"TwoAts", MediumEmail, "a@b@c", "", true},
		{"EmptyLocal", MediumEmail, "@example.org", "", true},
		{"NUL", MediumEmail, "al\x00ice@example.org", "", true},
		{"Newline", MediumEmail, "alice@example.org\nBcc: x", "", true},
		{"MSISDN", MediumMSISDN, "447700900123", "", true},
		{"UnknownMedium", Medium("carrier-pigeon"), "a@b", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalAddress(tt.medium, tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidAddress) {
					t.Fatalf("CanonicalAddress(%q) = %q, %v; want ErrInvalidAddress", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("CanonicalAddress(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}
