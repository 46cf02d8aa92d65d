package store

import (
	"context"
	"errors"
	"strings"
	"time"
)

// ErrInvalidChange is returned by ModifyUser for a change that contradicts
// itself or the account: creating a user without a password, reactivating
// one without a new password, deactivating and locking at once. Nothing is
// written.
var ErrInvalidChange = errors.New("invalid user change")

// Tri is a three-way filter on a flag: any value, only true, only false.
type Tri int8

const (
	TriAny Tri = iota
	TriTrue
	TriFalse
)

// UserOrder is a column ListUsersPage can sort by.
type UserOrder string

const (
	UserOrderName        UserOrder = "name"
	UserOrderCreated     UserOrder = "created"
	UserOrderLastSeen    UserOrder = "last_seen"
	UserOrderAdmin       UserOrder = "admin"
	UserOrderDeactivated UserOrder = "deactivated"
	UserOrderLocked      UserOrder = "locked"
)

// UserQuery selects a page of users for ListUsersPage.
type UserQuery struct {
	// From is how many matching users to skip; Limit how many to return
	// at most (it must be positive).
	From, Limit int
	// Name keeps the users whose localpart (between "@" and ":")
	// contains it, ignoring ASCII case; "" keeps all.
	Name string
	// UserID keeps the users whose whole ID contains it, ignoring ASCII
	// case; "" keeps all.
	UserID                     string
	Deactivated, Admin, Locked Tri
	// OrderBy is the sort column (UserOrderName when empty); ties are
	// broken by user ID, bytewise and ascending, whatever Descending says.
	OrderBy    UserOrder
	Descending bool
}

// UserSummary is one user of a page, with when it was last seen.
type UserSummary struct {
	User
	// LastSeenAt is the latest last-seen time of the user's devices, zero
	// when it has none.
	LastSeenAt time.Time
}

// UserPage is what ListUsersPage returns.
type UserPage struct {
	Users []UserSummary
	// Total is how many users match the query's filters, whatever its
	// From and Limit.
	Total int
}

// UserChange is what ModifyUser writes, all in one transaction: the
// operator's edit of an account through the admin API.
type UserChange struct {
	UserID string
	Now    time.Time
	// Create makes the user if it does not exist, created at Now; it then
	// needs PasswordHash.
	Create bool
	// PasswordHash, when set, replaces the password hash; with
	// LogoutDevices every device and token of the user goes too. Either
	// way the user's UIA sessions and login tokens go (as with
	// ChangePassword).
	PasswordHash  *string
	LogoutDevices bool
	// ThreePIDs, when set, replaces the user's whole set of third-party
	// IDs. An address the user keeps keeps its AddedAt; a new one is added
	// at Now.
	ThreePIDs *[]ThreePID
	Admin     *bool
	// Locked, when set, locks the account at Now (an earlier lock keeps
	// its time) or unlocks it.
	Locked *bool
	// Deactivate applies the rules of DeactivateUser to an active account;
	// Reactivate lifts the mark of a deactivated one, which then needs
	// PasswordHash (deactivation removed its hash). Each is a no-op on an
	// account already in the state it asks for.
	Deactivate, Reactivate bool
}

// UserChangeResult is what ModifyUser did.
type UserChangeResult struct {
	Created bool
	// User is the account as stored after the change.
	User User
	// LoggedOut are the devices the password change deleted, and
	// DeactivatedDevices those the deactivation deleted, each in byte
	// order.
	LoggedOut, DeactivatedDevices []string
	// Deactivated is true when this change deactivated the account.
	Deactivated bool
}

// UserAdminStore is what the admin API needs beyond the other stores.
type UserAdminStore interface {
	// ListUsersPage returns the users that match the query's filters, in
	// its order, From and Limit applied, and how many match in all.
	ListUsersPage(ctx context.Context, q UserQuery) (UserPage, error)
	// ModifyUser applies the change in one transaction (see UserChange)
	// and reports what it did. It returns, having written nothing,
	// ErrNotFound when the user does not exist and Create is false,
	// ErrConflict when an address is bound to another user, and
	// ErrInvalidChange. With the outbox on, the same transaction writes a
	// devices.deleted event for the devices it deleted (ReasonPasswordChange
	// or ReasonDeactivated) and a user.deactivated event (erase false) when
	// it deactivated the account. Stores apply these rules with
	// WriteUserChange.
	ModifyUser(ctx context.Context, c UserChange) (UserChangeResult, error)
}

// UserAdminTx is one transaction in which WriteUserChange applies its
// rules: the account rules' transaction and a few writes of its own.
type UserAdminTx interface {
	AccountTx
	// LockUser returns the user, locking its row until the transaction
	// ends, or ErrNotFound.
	LockUser(ctx context.Context, userID string) (User, error)
	// InsertUser stores a new user.
	InsertUser(ctx context.Context, u User) error
	// SetAdmin sets the user's admin flag.
	SetAdmin(ctx context.Context, userID string, admin bool) error
	// SetLocked locks the user at at (keeping an earlier lock's time), or
	// unlocks it when at is zero.
	SetLocked(ctx context.Context, userID string, at time.Time) error
	// ClearDeactivated lifts the user's deactivated mark.
	ClearDeactivated(ctx context.Context, userID string) error
	// ListThreePIDs returns the user's third-party IDs.
	ListThreePIDs(ctx context.Context, userID string) ([]ThreePID, error)
	// AddThreePID binds an address; a taken one fails with the driver's
	// unique violation.
	AddThreePID(ctx context.Context, t ThreePID) error
}

// WriteUserChange applies the rules of UserAdminStore.ModifyUser inside tx.
// On error the caller rolls tx back.
func WriteUserChange(ctx context.Context, tx UserAdminTx, c UserChange) (UserChangeResult, error) {
	var res UserChangeResult
	if c.Deactivate && (c.Reactivate || c.Locked != nil && *c.Locked) {
		return res, ErrInvalidChange
	}
	u, err := tx.LockUser(ctx, c.UserID)
	switch {
	case errors.Is(err, ErrNotFound) && c.Create:
		if c.PasswordHash == nil || *c.PasswordHash == "" || c.Deactivate {
			return res, ErrInvalidChange
		}
		u = User{ID: c.UserID, PasswordHash: *c.PasswordHash, CreatedAt: c.Now}
		if c.Admin != nil {
			u.Admin = *c.Admin
		}
		if err := tx.InsertUser(ctx, u); err != nil {
			return res, err
		}
		res.Created = true
	case err != nil:
		return res, err
	}
	if !res.Created && c.PasswordHash != nil {
		if *c.PasswordHash == "" {
			return res, ErrInvalidChange
		}
		res.LoggedOut, err = WritePasswordChange(ctx, tx, PasswordChange{
			UserID: c.UserID, Hash: *c.PasswordHash, LogoutDevices: c.LogoutDevices,
		})
		if err != nil {
			return res, err
		}
	}
	if c.Reactivate && u.Deactivated() {
		if c.PasswordHash == nil {
			return res, ErrInvalidChange
		}
		if err := tx.ClearDeactivated(ctx, c.UserID); err != nil {
			return res, err
		}
	}
	if c.ThreePIDs != nil {
		if err := replaceThreePIDs(ctx, tx, c.UserID, *c.ThreePIDs, c.Now); err != nil {
			return res, err
		}
	}
	if c.Admin != nil && !res.Created && *c.Admin != u.Admin {
		if err := tx.SetAdmin(ctx, c.UserID, *c.Admin); err != nil {
			return res, err
		}
	}
	if c.Locked != nil {
		at := time.Time{}
		if *c.Locked {
			at = c.Now
		}
		if err := tx.SetLocked(ctx, c.UserID, at); err != nil {
			return res, err
		}
	}
	// Last, so that nothing above gives back what deactivation removes.
	if c.Deactivate && !u.Deactivated() {
		res.DeactivatedDevices, err = WriteDeactivation(ctx, tx, c.UserID, c.Now, UIAGrant{})
		if err != nil {
			return res, err
		}
		res.Deactivated = true
	}
	if res.User, err = tx.LockUser(ctx, c.UserID); err != nil {
		return res, err
	}
	return res, nil
}

// replaceThreePIDs makes want the user's whole set of third-party IDs,
// keeping the AddedAt of addresses it had.
func replaceThreePIDs(ctx context.Context, tx UserAdminTx, userID string, want []ThreePID, now time.Time) error {
	had, err := tx.ListThreePIDs(ctx, userID)
	if err != nil {
		return err
	}
	if err := tx.DeleteThreePIDs(ctx, userID); err != nil {
		return err
	}
	type key struct {
		medium  Medium
		address string
	}
	added := map[key]time.Time{}
	for _, t := range had {
		added[key{t.Medium, t.Address}] = t.AddedAt
	}
	seen := map[key]bool{}
	for _, t := range want {
		k := key{t.Medium, t.Address}
		if seen[k] {
			continue
		}
		seen[k] = true
		t.UserID = userID
		t.AddedAt = now
		if at, ok := added[k]; ok {
			t.AddedAt = at
		}
		if err := tx.AddThreePID(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// LikePattern is the SQL LIKE pattern (with ESCAPE '\') matching any text
// that contains s literally, lower-cased: the filters of ListUsersPage.
func LikePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}

// ImportedUser is one account of a bulk import: the user (its password
// hash as the old server stored it) and its third-party IDs.
type ImportedUser struct {
	User      User
	ThreePIDs []ThreePID
}

// ImportOutcome is what ImportUsers did with one ImportedUser.
type ImportOutcome int8

const (
	// ImportCreated: the user and its addresses were stored.
	ImportCreated ImportOutcome = iota + 1
	// ImportExists: a user with that ID exists; it was left as it is.
	ImportExists
	// ImportConflict: one of its addresses is bound to another user
	// (stored, or earlier in the same batch); nothing was stored for it.
	ImportConflict
)

// UserImporter stores users in bulk.
type UserImporter interface {
	// ImportUsers creates, in one transaction, each of the users whose ID
	// is not taken and whose addresses are free, with its addresses, and
	// reports the outcome of each, in order. Existing users are never
	// changed, so that importing the same file again changes nothing. A
	// user listed twice is created once (the second is ImportExists).
	// Stores apply these rules with PlanImport.
	ImportUsers(ctx context.Context, users []ImportedUser) ([]ImportOutcome, error)
}

// ThreePIDKey names an address independently of its owner.
type ThreePIDKey struct {
	Medium  Medium
	Address string
}

// PlanImport decides the outcome of each user of a batch, given which of
// their IDs exist (exists) and which of their addresses are bound
// (bound), and returns the users to create, in order.
func PlanImport(users []ImportedUser, exists map[string]bool, bound map[ThreePIDKey]bool) ([]ImportOutcome, []ImportedUser) {
	outcomes := make([]ImportOutcome, len(users))
	var create []ImportedUser
	taken := map[string]bool{}
	claimed := map[ThreePIDKey]bool{}
	for i, u := range users {
		if exists[u.User.ID] || taken[u.User.ID] {
			outcomes[i] = ImportExists
			continue
		}
		conflict := false
		mine := map[ThreePIDKey]bool{}
		for _, t := range u.ThreePIDs {
			k := ThreePIDKey{t.Medium, t.Address}
			if bound[k] || claimed[k] {
				conflict = true
			}
			mine[k] = true
		}
		if conflict {
			outcomes[i] = ImportConflict
			continue
		}
		// The user's own list may repeat an address: keep one.
		tps := u.ThreePIDs[:0:0]
		for _, t := range u.ThreePIDs {
			k := ThreePIDKey{t.Medium, t.Address}
			if claimed[k] {
				continue
			}
			claimed[k] = true
			t.UserID = u.User.ID
			tps = append(tps, t)
		}
		u.ThreePIDs = tps
		taken[u.User.ID] = true
		outcomes[i] = ImportCreated
		create = append(create, u)
	}
	return outcomes, create
}

// AdminToken is a token for automation that authorises the admin API: it
// belongs to no user and no device. The store keeps its hash; ID is the
// public name it is listed and revoked by.
type AdminToken struct {
	ID        string
	Hash      TokenHash
	Name      string
	CreatedAt time.Time
	// ExpiresAt is zero for a token that does not expire.
	ExpiresAt time.Time
}

// Expired reports whether the token has expired at now.
func (t AdminToken) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// AdminTokenStore persists admin tokens.
type AdminTokenStore interface {
	// CreateAdminToken stores a token; ErrConflict if its ID or hash is
	// taken.
	CreateAdminToken(ctx context.Context, t AdminToken) error
	// FindAdminToken returns the token with that hash, expired or not, or
	// ErrNotFound.
	FindAdminToken(ctx context.Context, h TokenHash) (AdminToken, error)
	// ListAdminTokens returns every token, oldest first (then by ID).
	ListAdminTokens(ctx context.Context) ([]AdminToken, error)
	// DeleteAdminToken revokes a token by ID; ErrNotFound if there is none.
	DeleteAdminToken(ctx context.Context, id string) error
}

// RegistrationStore serves shared-secret registration: single-use nonces,
// and the new user with its first session written at once.
type RegistrationStore interface {
	// CreateRegistrationNonce stores a nonce valid until expiresAt.
	CreateRegistrationNonce(ctx context.Context, nonce string, expiresAt time.Time) error
	// ConsumeRegistrationNonce deletes the nonce and reports ErrNotFound
	// if it was not there or had expired at now: each nonce serves one
	// registration attempt.
	ConsumeRegistrationNonce(ctx context.Context, nonce string, now time.Time) error
	// RegisterUser creates the user and writes its first login (as
	// CreateSession does) in one transaction. It returns ErrConflict, having
	// written nothing, if the user ID is taken.
	RegisterUser(ctx context.Context, u User, s NewSession) error
}
