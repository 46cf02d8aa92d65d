package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"time"
)

// Event types: what an OutboxEvent reports. Their payloads are documented in
// docs/homeserver-events.md.
const (
	// EventDevicesDeleted reports that devices of a user, and every token
	// of them, are gone.
	EventDevicesDeleted = "devices.deleted"
	// EventUserDeactivated reports that an account was deactivated.
	EventUserDeactivated = "user.deactivated"
)

// DeletionReason says why devices were deleted, in an EventDevicesDeleted.
type DeletionReason string

// The reasons devices are deleted.
const (
	// ReasonLogout: the device logged itself out (POST /logout).
	ReasonLogout DeletionReason = "logout"
	// ReasonLogoutAll: a device logged out every device of its user
	// (POST /logout/all), or the operator did.
	ReasonLogoutAll DeletionReason = "logout_all"
	// ReasonRefreshReplay: a superseded refresh token was presented again,
	// a sign that it was stolen, and its device was deleted.
	ReasonRefreshReplay DeletionReason = "refresh_replay"
	// ReasonDeleted: the user deleted the devices (DELETE /devices/{id},
	// POST /delete_devices).
	ReasonDeleted DeletionReason = "deleted"
	// ReasonPasswordChange: a password change logged out the user's other
	// devices.
	ReasonPasswordChange DeletionReason = "password_change"
	// ReasonDeactivated: the account was deactivated.
	ReasonDeactivated DeletionReason = "deactivated"
)

// OutboxEvent is an event for the homeserver, written in the transaction of
// the change it reports and delivered at least once, in ID order.
type OutboxEvent struct {
	// ID is the store's key, which orders delivery; 0 before it is stored.
	ID int64
	// EventID is random and unique: what a receiver deduplicates on.
	EventID string
	Type    string
	UserID  string
	// Payload is the event's content, a JSON object.
	Payload   []byte
	CreatedAt time.Time
	// Attempts counts the failed deliveries so far; NextAttemptAt (zero:
	// at once) is when to try again, and LastError the kind of the last
	// failure ("" for none), never a body or a secret.
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
}

// devicesDeletedPayload is the content of an EventDevicesDeleted, as the
// receiver reads it.
type devicesDeletedPayload struct {
	UserID    string         `json:"user_id"`
	DeviceIDs []string       `json:"device_ids"`
	Reason    DeletionReason `json:"reason"`
}

// userDeactivatedPayload is the content of an EventUserDeactivated.
type userDeactivatedPayload struct {
	UserID string `json:"user_id"`
	Erase  bool   `json:"erase"`
}

// DevicesDeleted returns the event that reports the deletion of a user's
// devices, which the caller writes with the deletion, in its transaction.
func DevicesDeleted(userID string, deviceIDs []string, reason DeletionReason, now time.Time) OutboxEvent {
	if deviceIDs == nil {
		deviceIDs = []string{}
	}
	return newEvent(EventDevicesDeleted, userID, devicesDeletedPayload{userID, deviceIDs, reason}, now)
}

// UserDeactivated returns the event that reports an account's
// deactivation; erase is whether the user asked for their data to be
// erased.
func UserDeactivated(userID string, erase bool, now time.Time) OutboxEvent {
	return newEvent(EventUserDeactivated, userID, userDeactivatedPayload{userID, erase}, now)
}

// newEvent builds an event with a fresh random event ID.
func newEvent(typ, userID string, payload any, now time.Time) OutboxEvent {
	b, err := json.Marshal(payload)
	if err != nil {
		panic(err) // the payloads are fixed structs of strings and bools
	}
	return OutboxEvent{EventID: rand.Text(), Type: typ, UserID: userID, Payload: b, CreatedAt: now}
}

// OutboxStore is what the deliverer of the outbox needs. Events are written
// by the operations that delete devices or deactivate accounts, in their own
// transactions, and only when the store was opened with its outbox on; off,
// nothing is written and these methods find nothing.
type OutboxStore interface {
	// ClaimOutbox makes holder the outbox's one deliverer until
	// now+ttl, unless another holder's claim lasts past now, and reports
	// whether holder holds it. Holding it, a call renews it.
	ClaimOutbox(ctx context.Context, holder string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseOutbox ends holder's claim, if it holds one.
	ReleaseOutbox(ctx context.Context, holder string) error
	// FindOutboxEvents returns at most limit events, the oldest first (in
	// ID order), whatever their NextAttemptAt.
	FindOutboxEvents(ctx context.Context, limit int) ([]OutboxEvent, error)
	// DeleteOutboxEvent deletes a delivered event. An event already gone
	// is not an error (another deliverer got there first).
	DeleteOutboxEvent(ctx context.Context, id int64) error
	// RecordOutboxFailure counts a failed delivery of the event, with the
	// kind of failure and the time of the next attempt. An event already
	// gone is not an error.
	RecordOutboxFailure(ctx context.Context, id int64, errKind string, nextAttemptAt time.Time) error
	// CountOutboxEvents returns how many events wait for delivery.
	CountOutboxEvents(ctx context.Context) (int, error)
}
