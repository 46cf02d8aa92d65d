package token

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestNew_Format(t *testing.T) {
	seen := map[string]bool{}
	for _, kind := range []Kind{Access, Refresh, Login} {
		for range 200 {
			tok := New(kind)
			if len(tok) != MaxLen {
				t.Fatalf("len(%q) = %d, want %d", tok, len(tok), MaxLen)
			}
			parts := strings.Split(tok, "_")
			if len(parts) != 3 || parts[0] != string(kind) || len(parts[1]) != randomLen || len(parts[2]) != checksumLen {
				t.Fatalf("token %q does not read %s_<32>_<6>", tok, kind)
			}
			if err := Check(kind, tok); err != nil {
				t.Fatalf("Check(%q) = %v", tok, err)
			}
			if seen[tok] {
				t.Fatalf("duplicate token %q", tok)
			}
			seen[tok] = true
		}
	}
}

func TestNew_UsesWholeAlphabet(t *testing.T) {
	counts := map[byte]int{}
	for range 500 {
		tok := New(Access)
		for i := 4; i < 4+randomLen; i++ {
			counts[tok[i]]++
		}
	}
	if len(counts) != 62 {
		t.Fatalf("random part used %d distinct characters, want 62", len(counts))
	}
}

func TestCheck_Rejects(t *testing.T) {
	good := New(Access)
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct {
		name string
		kind Kind
		in   string
	}{
		{"Empty", Access, ""},
		{"WrongKind", Refresh, good},
		{"AccessAsLogin", Login, good},
		{"LoginAsAccess", Access, New(Login)},
		{"RandomChanged", Access, flip(good, 10)},
		{"ChecksumChanged", Access, flip(good, MaxLen-1)},
		{"Truncated", Access, good[:MaxLen-1]},
		{"Extended", Access, good + "a"},
		{"BadSeparator", Access, good[:4+randomLen] + "-" + good[5+randomLen:]},
		{"NonBase62", Access, good[:5] + "!" + good[6:]},
		{"Synapse", Access, "syt_YWxpY2U_XmVyvNhsdNgNPImcCkRm_0VZ8QG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Check(tt.kind, tt.in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Check(%q) = %v, want ErrMalformed", tt.in, err)
			}
		})
	}
}

func TestHash_Stable(t *testing.T) {
	tok := New(Access)
	again := string([]byte(tok)) // a distinct copy of the same text
	if Hash(tok) != Hash(again) {
		t.Fatal("Hash is not deterministic")
	}
	if got, want := fmt.Sprintf("%x", Hash("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Fatalf("Hash(abc) = %s, want the SHA-256 %s", got, want)
	}
	if Hash(tok) == Hash(New(Access)) {
		t.Fatal("two tokens share a hash")
	}
}

func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		New(Access)
	}
}

func BenchmarkCheck(b *testing.B) {
	tok := New(Access)
	for b.Loop() {
		if Check(Access, tok) != nil {
			b.Fatal("check failed")
		}
	}
}

// FuzzCheck: Check never panics, accepts nothing that New could not have
// made, and accepts whatever New makes.
func FuzzCheck(f *testing.F) {
	f.Add(New(Access))
	f.Add(New(Refresh))
	f.Add("ada__")
	f.Add("syt_YWxpY2U_XmVyvNhsdNgNPImcCkRm_0VZ8QG")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		for _, kind := range []Kind{Access, Refresh, Login} {
			if Check(kind, s) != nil {
				continue
			}
			if len(s) != MaxLen || !strings.HasPrefix(s, string(kind)+"_") || s[MaxLen-checksumLen:] != checksum(s[:MaxLen-checksumLen-1]) {
				t.Fatalf("Check accepted %q as %s", s, kind)
			}
		}
	})
}
