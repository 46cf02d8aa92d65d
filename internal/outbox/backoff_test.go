package outbox

import (
	"testing"
	"time"
)

func TestDeliverer_Backoff(t *testing.T) {
	d := New(nil, Config{MinBackoff: time.Second, MaxBackoff: time.Minute})
	for _, tt := range []struct {
		attempts int
		full     time.Duration
	}{
		{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {6, 32 * time.Second},
		{7, time.Minute}, {39, time.Minute}, {40, time.Minute}, {1000, time.Minute},
	} {
		for range 50 {
			if got := d.backoff(tt.attempts); got < tt.full/2 || got > tt.full {
				t.Fatalf("backoff(%d) = %v, want between %v and %v", tt.attempts, got, tt.full/2, tt.full)
			}
		}
	}
}
