package password

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func newHasher(tb testing.TB, cost int, pepper string) *Hasher {
	tb.Helper()
	h, err := NewHasher(cost, []byte(pepper))
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func TestHasher_HashVerify(t *testing.T) {
	h := newHasher(t, bcrypt.MinCost, "")
	hash, err := h.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$authd-v1$$2a$04$") {
		t.Fatalf("hash %q lacks the versioned prefix and cost", hash)
	}
	tests := []struct {
		name     string
		password string
		wantOK   bool
	}{
		{"OK", "correct horse", true},
		{"Wrong", "correct horsE", false},
		{"Empty", "", false},
		{"Longer", "correct horse ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := h.Verify(hash, tt.password)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK != tt.wantOK || res.NeedsRehash {
				t.Fatalf("Verify = %+v, want OK=%v without rehash", res, tt.wantOK)
			}
		})
	}
}

func TestHasher_EveryByteCounts(t *testing.T) {
	h := newHasher(t, bcrypt.MinCost, "")
	base := strings.Repeat("p", 72)
	hash, err := h.Hash(base + "tail-one")
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{base, base + "tail-two", base + "tail-on"} {
		res, err := h.Verify(hash, pw)
		if err != nil || res.OK {
			t.Fatalf("Verify(%d bytes sharing the first 72) = %+v, %v; want no match", len(pw), res, err)
		}
	}
	long := strings.Repeat("x", MaxLen)
	hash, err = h.Hash(long)
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := h.Verify(hash, long); !res.OK {
		t.Fatal("a password of exactly MaxLen bytes does not verify")
	}
	if res, _ := h.Verify(hash, long[:MaxLen-1]+"y"); res.OK {
		t.Fatal("the last byte of a MaxLen password does not count")
	}
}

func TestHasher_Limits(t *testing.T) {
	h := newHasher(t, bcrypt.MinCost, "")
	if _, err := h.Hash(strings.Repeat("x", MaxLen+1)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("Hash(too long) err = %v, want ErrTooLong", err)
	}
	if _, err := h.Hash(""); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Hash(empty) err = %v, want ErrEmpty", err)
	}
	hash, _ := h.Hash("pw")
	if res, err := h.Verify(hash, strings.Repeat("x", MaxLen+1)); err != nil || res.OK {
		t.Fatalf("Verify(too long) = %+v, %v; want no match", res, err)
	}
	if _, err := NewHasher(3, nil); err == nil {
		t.Fatal("NewHasher(3) accepted a cost below bcrypt's minimum")
	}
}

func TestHasher_Pepper(t *testing.T) {
	a := newHasher(t, bcrypt.MinCost, "pepper-a")
	b := newHasher(t, bcrypt.MinCost, "pepper-b")
	hash, _ := a.Hash("pw")
	if res, _ := a.Verify(hash, "pw"); !res.OK {
		t.Fatal("peppered hash does not verify with its pepper")
	}
	if res, _ := b.Verify(hash, "pw"); res.OK {
		t.Fatal("peppered hash verifies with another pepper")
	}
}

func TestHasher_NeedsRehash(t *testing.T) {
	low := newHasher(t, bcrypt.MinCost, "")
	high := newHasher(t, bcrypt.MinCost+1, "")
	hash, _ := low.Hash("pw")
	res, err := high.Verify(hash, "pw")
	if err != nil || !res.OK || !res.NeedsRehash {
		t.Fatalf("Verify at another cost = %+v, %v; want OK and NeedsRehash", res, err)
	}

	legacy, _ := bcrypt.GenerateFromPassword([]byte("synapse-pw"), bcrypt.MinCost)
	res, err = low.Verify(string(legacy), "synapse-pw")
	if err != nil || !res.OK || !res.NeedsRehash {
		t.Fatalf("Verify(plain bcrypt) = %+v, %v; want OK and NeedsRehash", res, err)
	}
	if res, _ := low.Verify(string(legacy), "synapse-pX"); res.OK {
		t.Fatal("plain bcrypt hash matched a wrong password")
	}
	long72 := strings.Repeat("q", 72)
	legacy, _ = bcrypt.GenerateFromPassword([]byte(long72), bcrypt.MinCost)
	if res, _ := low.Verify(string(legacy), long72+"extra"); res.OK {
		t.Fatal("plain bcrypt hash matched a password by its first 72 bytes")
	}
}

func TestHasher_UnknownFormat(t *testing.T) {
	h := newHasher(t, bcrypt.MinCost, "")
	for _, hash := range []string{"", "plaintext", "$argon2id$v=19$m=65536,t=3,p=4$abc$def", "$authd-v1$garbage"} {
		res, err := h.Verify(hash, "plaintext")
		if res.OK {
			t.Fatalf("Verify(%q) matched", hash)
		}
		if err == nil {
			t.Fatalf("Verify(%q) gave no error for a malformed hash", hash)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, cost := range []int{bcrypt.MinCost, 10, 12} {
		h := newHasher(b, cost, "")
		hash, _ := h.Hash("benchmark password")
		b.Run(fmt.Sprintf("cost=%d", cost), func(b *testing.B) {
			for b.Loop() {
				h.Verify(hash, "benchmark password")
			}
		})
	}
}

// work sums the bcrypt work of comparisons at the given costs, in units of
// one key expansion round: 2^cost each.
func work(costs []int) int {
	total := 0
	for _, c := range costs {
		total += 1 << c
	}
	return total
}

// Every path through Verify costs the work of one comparison at the work
// cost, whatever the stored hash's cost and format: a right or wrong
// password, an unknown user (VerifyDummy), a too-long password and an
// unusable hash. The stored costs here straddle the configured one.
func TestHasher_SameWorkAtEveryStoredCost(t *testing.T) {
	const configured, highest = 6, 8
	h := newHasher(t, configured, "pepper")
	var costs []int
	h.SetCompareHook(func(cost int) { costs = append(costs, cost) })
	hashes := map[string]string{}
	for _, c := range []int{4, 5, configured, 7, highest} {
		other := newHasher(t, c, "pepper")
		hashes[fmt.Sprintf("v1-cost%d", c)], _ = other.Hash("pw")
		plain, _ := bcrypt.GenerateFromPassword([]byte("pw"), c)
		hashes[fmt.Sprintf("plain-cost%d", c)] = string(plain)
	}
	h.NoteStoredCost(highest)
	h.Warm()
	if h.WorkCost() != highest {
		t.Fatalf("WorkCost = %d, want %d", h.WorkCost(), highest)
	}
	want := 1 << highest
	check := func(name string, run func()) {
		t.Helper()
		costs = nil
		run()
		if got := work(costs); got != want {
			t.Fatalf("%s: comparisons at costs %v, work %d; want %d (one comparison at cost %d)", name, costs, got, want, highest)
		}
	}
	for name, hash := range hashes {
		check(name+"/Right", func() {
			if res, err := h.Verify(hash, "pw"); err != nil || !res.OK {
				t.Fatalf("%s: Verify = %+v, %v", name, res, err)
			}
		})
		check(name+"/Wrong", func() { h.Verify(hash, "nope") })
		check(name+"/TooLong", func() { h.Verify(hash, strings.Repeat("x", MaxLen+1)) })
	}
	check("Dummy", h.VerifyDummy)
	check("Garbage", func() { h.Verify("plaintext", "pw") })
	check("V1Garbage", func() { h.Verify(prefixV1+"$2a$xx$nothing", "pw") })
	check("PlainOver72", func() { h.Verify(hashes["plain-cost5"], strings.Repeat("p", 73)) })
}

// Without stored costs above it, the work cost is the configured one: one
// comparison at that cost for every path, as before any survey.
func TestHasher_WorkCostIsConfiguredCost(t *testing.T) {
	h := newHasher(t, bcrypt.MinCost+1, "")
	var costs []int
	h.SetCompareHook(func(cost int) { costs = append(costs, cost) })
	hash, _ := h.Hash("pw")
	want := bcrypt.MinCost + 1
	for name, run := range map[string]func(){
		"Right":   func() { h.Verify(hash, "pw") },
		"Wrong":   func() { h.Verify(hash, "nope") },
		"Dummy":   func() { h.VerifyDummy() },
		"TooLong": func() { h.Verify(hash, strings.Repeat("x", MaxLen+1)) },
		"Garbage": func() { h.Verify("plaintext", "pw") },
	} {
		costs = nil
		run()
		if len(costs) != 1 || costs[0] != want {
			t.Fatalf("%s: comparisons at costs %v, want exactly one at %d", name, costs, want)
		}
	}
}

// A hash above the work cost that Verify meets raises the work cost: from
// then on an unknown user costs what that account costs.
func TestHasher_VerifyRaisesWorkCost(t *testing.T) {
	h := newHasher(t, bcrypt.MinCost, "")
	high, _ := newHasher(t, bcrypt.MinCost+2, "").Hash("pw")
	var costs []int
	h.SetCompareHook(func(cost int) { costs = append(costs, cost) })
	h.Verify(high, "nope")
	if h.WorkCost() != bcrypt.MinCost+2 {
		t.Fatalf("WorkCost = %d after a cost-%d hash, want %d", h.WorkCost(), bcrypt.MinCost+2, bcrypt.MinCost+2)
	}
	costs = nil
	h.VerifyDummy()
	if got := work(costs); got != 1<<(bcrypt.MinCost+2) {
		t.Fatalf("dummy after the raise: costs %v, work %d; want %d", costs, got, 1<<(bcrypt.MinCost+2))
	}
	// A lower cost never lowers it.
	h.NoteStoredCost(bcrypt.MinCost)
	if h.WorkCost() != bcrypt.MinCost+2 {
		t.Fatalf("WorkCost = %d after noting a lower cost", h.WorkCost())
	}
}

func TestStoredCost(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"$authd-v1$$2a$12$", 12, true},
		{"$authd-v1$$2a$04$abcdefghijklmnopqrstuv", 4, true},
		{"$2b$10$", 10, true},
		{"$2y$31$", 31, true},
		{"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", 10, true},
		{"$2a$03$", 0, false},
		{"$2a$32$", 0, false},
		{"$2c$10$", 0, false},
		{"$2a$1x$", 0, false},
		{"$2a$10", 0, false},
		{"$argon2id$v=19$", 0, false},
		{"", 0, false},
		{"$authd-v1$", 0, false},
	}
	for _, tt := range tests {
		got, ok := StoredCost(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("StoredCost(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// synapseHash is a hash made the way Synapse makes one: bcrypt of the
// password (given here already in NFKC form, as Synapse normalises it)
// followed by the pepper, cut at bcrypt's 72 bytes.
func synapseHash(t *testing.T, normalized, pepper string) string {
	t.Helper()
	b := []byte(normalized + pepper)
	if len(b) > 72 {
		b = b[:72]
	}
	h, err := bcrypt.GenerateFromPassword(b, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// Hashes imported from Synapse verify with its pepper and not without it,
// and so do passwords Synapse normalised (full-width letters) and ones
// whose pepper ran past bcrypt's 72 bytes; hashes from Dendrite (bcrypt of
// the password as typed) verify with no pepper set.
func TestHasher_ImportedSynapseHashes(t *testing.T) {
	const pepper = "synapse pepper from password_config"
	long := strings.Repeat("p", 60) // 60 + the pepper > 72
	for _, tt := range []struct {
		name, hashed, typed string
	}{
		{"ascii", "correct horse", "correct horse"},
		// Synapse stored NFKC("ｐａｓｓｗｏｒｄ") = "password".
		{"full-width letters", "password", "ｐａｓｓｗｏｒｄ"},
		{"pepper past 72 bytes", long, long},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stored := synapseHash(t, tt.hashed, pepper)
			with, err := NewHasher(bcrypt.MinCost, nil)
			if err != nil {
				t.Fatal(err)
			}
			with.SetImportedPepper([]byte(pepper))
			if res, err := with.Verify(stored, tt.typed); err != nil || !res.OK || !res.NeedsRehash {
				t.Fatalf("with the pepper: %+v, %v; want OK and a rehash", res, err)
			}
			if res, _ := with.Verify(stored, tt.typed+"x"); res.OK {
				t.Fatal("a wrong password verified")
			}
			without, _ := NewHasher(bcrypt.MinCost, nil)
			if res, _ := without.Verify(stored, tt.typed); res.OK {
				t.Fatal("a peppered hash verified without the pepper")
			}
		})
	}
	t.Run("dendrite", func(t *testing.T) {
		stored, err := bcrypt.GenerateFromPassword([]byte("dendrite pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := NewHasher(bcrypt.MinCost, nil)
		if res, err := h.Verify(string(stored), "dendrite pw"); err != nil || !res.OK {
			t.Fatalf("Dendrite hash: %+v, %v", res, err)
		}
	})
}
