package store

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// DeviceSeen is one sighting of a device: a request authenticated with one
// of its access tokens, at At, from the client address IP ("" when unknown
// or not recorded).
type DeviceSeen struct {
	UserID, DeviceID string
	IP               string
	At               time.Time
}

// LastSeenStore records when, and from where, devices were last seen.
type LastSeenStore interface {
	// RecordLastSeen writes a batch of sightings in one transaction. A
	// device's last-seen time only moves forward: a sighting no later than
	// the stored time is ignored, and the address goes with the time it was
	// seen at. Sightings of devices that no longer exist are ignored (the
	// device is never created). Stores dedupe the batch with
	// LatestSightings.
	RecordLastSeen(ctx context.Context, seen []DeviceSeen) error
}

// LatestSightings returns the latest sighting of each device in seen (of
// two at the same time, the one later in seen), sorted by user ID, then
// device ID, bytewise: the order in which a store takes its row locks, so
// that two batches never wait for each other in a cycle.
func LatestSightings(seen []DeviceSeen) []DeviceSeen {
	out := slices.Clone(seen)
	// A stable sort keeps equal devices in their order in seen, so the last
	// of a run is the latest sighting, or the later of two at one time.
	slices.SortStableFunc(out, func(a, b DeviceSeen) int {
		if c := cmp.Compare(a.UserID, b.UserID); c != 0 {
			return c
		}
		if c := cmp.Compare(a.DeviceID, b.DeviceID); c != 0 {
			return c
		}
		return a.At.Compare(b.At)
	})
	kept := out[:0]
	for i, s := range out {
		if i+1 < len(out) && out[i+1].UserID == s.UserID && out[i+1].DeviceID == s.DeviceID {
			continue
		}
		kept = append(kept, s)
	}
	return kept
}
