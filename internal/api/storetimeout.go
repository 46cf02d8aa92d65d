package api

import (
	"context"
	"time"

	"github.com/authd/authd/internal/store"
)

var _ Store = boundedStore{}

// boundedStore gives every call to the store its own deadline
// (Deps.StoreTimeout). A database that stops answering (a network
// partition, a server that hangs) then costs each request at most that long,
// and the request is answered 503 M_UNKNOWN (errors.go maps
// context.DeadlineExceeded). The bound is per call rather than per request,
// so that the time a login spends hashing is not taken from its database
// calls.
type boundedStore struct {
	s       Store
	timeout time.Duration
}

func (b boundedStore) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.timeout)
}

func (b boundedStore) FindUserByLogin(ctx context.Context, id string) (store.User, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.FindUserByLogin(ctx, id)
}

func (b boundedStore) FindUserByThreePID(ctx context.Context, medium store.Medium, address string) (store.User, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.FindUserByThreePID(ctx, medium, address)
}

func (b boundedStore) UpdatePasswordHash(ctx context.Context, userID, hash string) error {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.UpdatePasswordHash(ctx, userID, hash)
}

func (b boundedStore) RecordLoginNetwork(ctx context.Context, userID, network string, at time.Time) error {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.RecordLoginNetwork(ctx, userID, network, at)
}

func (b boundedStore) FindLoginNetwork(ctx context.Context, userID, network string, since time.Time) error {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.FindLoginNetwork(ctx, userID, network, since)
}

func (b boundedStore) CreateSession(ctx context.Context, s store.NewSession) error {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.CreateSession(ctx, s)
}

func (b boundedStore) RefreshSession(ctx context.Context, r store.Exchange) (store.Session, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.RefreshSession(ctx, r)
}

func (b boundedStore) ConfirmAccessToken(ctx context.Context, h store.TokenHash, now time.Time) error {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.ConfirmAccessToken(ctx, h, now)
}

func (b boundedStore) FindSessionByAccessToken(ctx context.Context, h store.TokenHash) (store.Session, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.FindSessionByAccessToken(ctx, h)
}

func (b boundedStore) FindDevice(ctx context.Context, userID, deviceID string) (store.Device, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.FindDevice(ctx, userID, deviceID)
}

func (b boundedStore) ListDevices(ctx context.Context, userID string) ([]store.Device, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.ListDevices(ctx, userID)
}

func (b boundedStore) RenameDevice(ctx context.Context, userID, deviceID, displayName string) error {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.RenameDevice(ctx, userID, deviceID, displayName)
}

func (b boundedStore) DeleteDevice(ctx context.Context, userID, deviceID string) error {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.DeleteDevice(ctx, userID, deviceID)
}

func (b boundedStore) DeleteAllDevices(ctx context.Context, userID string) (int, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.DeleteAllDevices(ctx, userID)
}

func (b boundedStore) CreateUIASession(ctx context.Context, s store.UIASession) error {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.CreateUIASession(ctx, s)
}

func (b boundedStore) FindUIASession(ctx context.Context, h store.TokenHash, now time.Time) (store.UIASession, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.FindUIASession(ctx, h, now)
}

func (b boundedStore) DeleteDevices(ctx context.Context, userID string, deviceIDs []string, g store.UIAGrant) ([]string, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.DeleteDevices(ctx, userID, deviceIDs, g)
}

func (b boundedStore) ChangePassword(ctx context.Context, c store.PasswordChange) ([]string, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.ChangePassword(ctx, c)
}

func (b boundedStore) DeactivateUser(ctx context.Context, userID string, at time.Time, erase bool, g store.UIAGrant) error {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.DeactivateUser(ctx, userID, at, erase, g)
}

func (b boundedStore) ListThreePIDs(ctx context.Context, userID string) ([]store.ThreePID, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.ListThreePIDs(ctx, userID)
}

func (b boundedStore) DeleteThreePID(ctx context.Context, userID string, medium store.Medium, address string) error {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.DeleteThreePID(ctx, userID, medium, address)
}

func (b boundedStore) CreateLoginToken(ctx context.Context, t store.LoginToken, g store.UIAGrant) error {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.CreateLoginToken(ctx, t, g)
}

func (b boundedStore) ConsumeLoginToken(ctx context.Context, h store.TokenHash, now time.Time) (store.User, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.ConsumeLoginToken(ctx, h, now)
}

func (b boundedStore) FindUserByID(ctx context.Context, id string) (store.User, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.FindUserByID(ctx, id)
}

func (b boundedStore) ListUsersPage(ctx context.Context, q store.UserQuery) (store.UserPage, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.ListUsersPage(ctx, q)
}

func (b boundedStore) ModifyUser(ctx context.Context, c store.UserChange) (store.UserChangeResult, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.ModifyUser(ctx, c)
}

func (b boundedStore) FindAdminToken(ctx context.Context, h store.TokenHash) (store.AdminToken, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.FindAdminToken(ctx, h)
}

func (b boundedStore) CreateRegistrationNonce(ctx context.Context, nonce string, expiresAt time.Time) error {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.CreateRegistrationNonce(ctx, nonce, expiresAt)
}

func (b boundedStore) ConsumeRegistrationNonce(ctx context.Context, nonce string, now time.Time) error {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.ConsumeRegistrationNonce(ctx, nonce, now)
}

func (b boundedStore) RegisterUser(ctx context.Context, u store.User, s store.NewSession) error {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.s.RegisterUser(ctx, u, s)
}
