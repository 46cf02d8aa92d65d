package store

import (
	"context"
	"slices"
	"time"
)

// AccountTx is one transaction of a store in which DeleteUserDevices,
// WritePasswordChange and WriteDeactivation apply the account rules. Two
// transactions consuming one UIA session are serialised by the row's
// deletion: the second deletes nothing, whatever the store's locking. Its
// methods return the driver's errors; the store maps them afterwards.
type AccountTx interface {
	// ConsumeUIASession deletes the session with hash h if it is bound to
	// exactly b and has not expired at now (its expiry after now), and
	// reports whether it deleted it.
	ConsumeUIASession(ctx context.Context, h TokenHash, b UIABinding, now time.Time) (bool, error)
	// DeleteUserDevice deletes one device of the user, with every token and
	// UIA session of it, and reports whether the user had it.
	DeleteUserDevice(ctx context.Context, userID, deviceID string) (bool, error)
	// DeleteOtherDevices deletes every device of the user except
	// keepDeviceID ("" keeps none), with their tokens and UIA sessions, and
	// returns the IDs it deleted, in any order.
	DeleteOtherDevices(ctx context.Context, userID, keepDeviceID string) ([]string, error)
	// DeleteDeviceTokensExcept deletes every access token of the device but
	// the one with hash keep, and every refresh token of it but the one
	// that access token was issued with (if any). Revoked refresh tokens
	// kept to recognise a replay go too.
	DeleteDeviceTokensExcept(ctx context.Context, userID, deviceID string, keep TokenHash) error
	// UpdatePasswordHash replaces the user's password hash and reports
	// whether the user exists.
	UpdatePasswordHash(ctx context.Context, userID, hash string) (bool, error)
	// MarkDeactivated marks the user deactivated at at, keeping an earlier
	// time if it has one, and reports whether the user exists.
	MarkDeactivated(ctx context.Context, userID string, at time.Time) (bool, error)
	// DeleteUIASessions deletes every UIA session of the user.
	DeleteUIASessions(ctx context.Context, userID string) error
	// DeleteThreePIDs unbinds every third-party ID of the user.
	DeleteThreePIDs(ctx context.Context, userID string) error
	// InsertLoginToken stores a login token.
	InsertLoginToken(ctx context.Context, t LoginToken) error
	// DeleteLoginTokens deletes every login token of the user and returns
	// how many it deleted.
	DeleteLoginTokens(ctx context.Context, userID string) (int, error)
}

// ConsumeGrant consumes g's session inside tx, or does nothing for the zero
// grant. It returns ErrUIASessionGone if the session is not there to
// consume: gone, expired at g.Now, bound to anything else, or bound to
// another user than userID, the user whose account the operation changes.
// The caller then rolls tx back.
func ConsumeGrant(ctx context.Context, tx AccountTx, userID string, g UIAGrant) error {
	if g.Session == nil {
		return nil
	}
	// A grant proves something about its own user only; the api package
	// builds both from one access token, and this keeps it so.
	if g.Binding.UserID != userID {
		return ErrUIASessionGone
	}
	ok, err := tx.ConsumeUIASession(ctx, *g.Session, g.Binding, g.Now)
	if err != nil {
		return err
	}
	if !ok {
		return ErrUIASessionGone
	}
	return nil
}

// DeleteUserDevices applies the rules of AccountStore.DeleteDevices inside
// tx and returns the IDs it deleted, in byte order. On error the caller
// rolls tx back.
func DeleteUserDevices(ctx context.Context, tx AccountTx, userID string, deviceIDs []string, g UIAGrant) ([]string, error) {
	if err := ConsumeGrant(ctx, tx, userID, g); err != nil {
		return nil, err
	}
	// In byte order, without repeats: the answer's order, and one order in
	// which every such transaction takes its device rows, so that two of
	// them on overlapping lists wait for each other instead of deadlocking.
	ids := slices.Clone(deviceIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	deleted := []string{}
	for _, id := range ids {
		ok, err := tx.DeleteUserDevice(ctx, userID, id)
		if err != nil {
			return nil, err
		}
		if ok {
			deleted = append(deleted, id)
		}
	}
	return deleted, nil
}

// WritePasswordChange applies the rules of AccountStore.ChangePassword
// inside tx and returns the IDs of the devices it deleted, in byte order.
// It returns ErrUIASessionGone or ErrNotFound, or tx's error; then the
// caller rolls tx back.
func WritePasswordChange(ctx context.Context, tx AccountTx, c PasswordChange) ([]string, error) {
	if err := ConsumeGrant(ctx, tx, c.UserID, c.Grant); err != nil {
		return nil, err
	}
	ok, err := tx.UpdatePasswordHash(ctx, c.UserID, c.Hash)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotFound
	}
	// A session started, or a login token issued, under the old password
	// must not authorise anything under the new one.
	if err := tx.DeleteUIASessions(ctx, c.UserID); err != nil {
		return nil, err
	}
	if _, err := tx.DeleteLoginTokens(ctx, c.UserID); err != nil {
		return nil, err
	}
	deleted := []string{}
	if !c.LogoutDevices {
		return deleted, nil
	}
	if deleted, err = tx.DeleteOtherDevices(ctx, c.UserID, c.KeepDeviceID); err != nil {
		return nil, err
	}
	slices.Sort(deleted)
	if c.KeepDeviceID != "" {
		// The caller stays logged in and can still refresh (spec: the
		// server "SHOULD NOT revoke the access token provided in the
		// request"), unlike Synapse, which drops its refresh token too.
		// Any other token of its device, such as the other half of a pair
		// not yet confirmed, goes with the other devices.
		if err := tx.DeleteDeviceTokensExcept(ctx, c.UserID, c.KeepDeviceID, c.KeepAccessToken); err != nil {
			return nil, err
		}
	}
	return deleted, nil
}

// WriteDeactivation applies the rules of UserStore.DeactivateUser inside
// tx and returns the IDs of the devices it deleted, in byte order. It
// returns ErrUIASessionGone or ErrNotFound, or tx's error; then the caller
// rolls tx back.
func WriteDeactivation(ctx context.Context, tx AccountTx, userID string, at time.Time, g UIAGrant) ([]string, error) {
	if err := ConsumeGrant(ctx, tx, userID, g); err != nil {
		return nil, err
	}
	ok, err := tx.MarkDeactivated(ctx, userID, at)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotFound
	}
	deleted, err := tx.DeleteOtherDevices(ctx, userID, "")
	if err != nil {
		return nil, err
	}
	slices.Sort(deleted)
	// The devices took their UIA sessions with them (the foreign key
	// cascades); the rule does not lean on that.
	if err := tx.DeleteUIASessions(ctx, userID); err != nil {
		return nil, err
	}
	if err := tx.DeleteThreePIDs(ctx, userID); err != nil {
		return nil, err
	}
	if _, err := tx.DeleteLoginTokens(ctx, userID); err != nil {
		return nil, err
	}
	// Without a hash no password logs in: the account cannot come back
	// through a password, whatever later code makes of the deactivated
	// mark. The column is NOT NULL; "" is no hash (see
	// FindPasswordHashPrefixes).
	if _, err := tx.UpdatePasswordHash(ctx, userID, ""); err != nil {
		return nil, err
	}
	return deleted, nil
}

// WriteLoginToken applies the rule of LoginTokenStore.CreateLoginToken
// inside tx: the grant is consumed, then the token stored. It returns
// ErrUIASessionGone, or tx's error; then the caller rolls tx back.
func WriteLoginToken(ctx context.Context, tx AccountTx, t LoginToken, g UIAGrant) error {
	if err := ConsumeGrant(ctx, tx, t.UserID, g); err != nil {
		return err
	}
	return tx.InsertLoginToken(ctx, t)
}
