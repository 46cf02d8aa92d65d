package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/authd/authd/internal/password"
	"github.com/authd/authd/internal/store"
)

// maxUsersPage bounds the limit of one page of GET /users; a larger limit
// is cut to it rather than refused.
const maxUsersPage = 1000

// adminThreePID is a third-party ID in the admin user object. authd binds
// an address only once an operator vouches for it, so validated_at is
// added_at.
type adminThreePID struct {
	Medium      string `json:"medium"`
	Address     string `json:"address"`
	AddedAt     int64  `json:"added_at"`
	ValidatedAt int64  `json:"validated_at"`
}

// adminUserListEntry is one user of GET /users, in Synapse's shape. The
// profile (displayname, avatar_url) is the homeserver's, and authd has no
// guests, user types, shadow bans or erasure: those keys are constants
// that the tools reading them expect to find. creation_ts is in seconds,
// as Synapse sends it (synapse-admin multiplies it by 1000).
type adminUserListEntry struct {
	Name         string  `json:"name"`
	IsGuest      bool    `json:"is_guest"`
	Admin        bool    `json:"admin"`
	UserType     *string `json:"user_type"`
	Deactivated  bool    `json:"deactivated"`
	Erased       bool    `json:"erased"`
	ShadowBanned bool    `json:"shadow_banned"`
	Displayname  *string `json:"displayname"`
	AvatarURL    *string `json:"avatar_url"`
	CreationTS   int64   `json:"creation_ts"`
	Locked       bool    `json:"locked"`
	// LastSeenTS is the latest last-seen time of the user's devices, in
	// milliseconds; null for a user without devices.
	LastSeenTS *int64 `json:"last_seen_ts"`
}

// adminUser is the user object of GET and PUT /v2/users/{userId}.
type adminUser struct {
	adminUserListEntry
	ThreePIDs               []adminThreePID `json:"threepids"`
	ExternalIDs             []struct{}      `json:"external_ids"`
	AppserviceID            *string         `json:"appservice_id"`
	ConsentServerNoticeSent *string         `json:"consent_server_notice_sent"`
	ConsentVersion          *string         `json:"consent_version"`
	ConsentTS               *int64          `json:"consent_ts"`
	Suspended               bool            `json:"suspended"`
}

func newAdminUserListEntry(u store.User, lastSeen time.Time) adminUserListEntry {
	e := adminUserListEntry{
		Name: u.ID, Admin: u.Admin, Deactivated: u.Deactivated(), Locked: u.Locked(),
		CreationTS: u.CreatedAt.Unix(),
	}
	if !lastSeen.IsZero() {
		ms := lastSeen.UnixMilli()
		e.LastSeenTS = &ms
	}
	return e
}

// adminUserObject reads what the user object needs beyond the user: its
// addresses and its devices' last-seen times.
func (a *api) adminUserObject(r *http.Request, u store.User) (adminUser, error) {
	tps, err := a.Store.ListThreePIDs(r.Context(), u.ID)
	if err != nil {
		return adminUser{}, err
	}
	devices, err := a.Store.ListDevices(r.Context(), u.ID)
	if err != nil {
		return adminUser{}, err
	}
	var lastSeen time.Time
	for _, d := range devices {
		if d.LastSeenAt.After(lastSeen) {
			lastSeen = d.LastSeenAt
		}
	}
	obj := adminUser{adminUserListEntry: newAdminUserListEntry(u, lastSeen), ThreePIDs: []adminThreePID{}, ExternalIDs: []struct{}{}}
	for _, t := range tps {
		ms := t.AddedAt.UnixMilli()
		obj.ThreePIDs = append(obj.ThreePIDs, adminThreePID{Medium: string(t.Medium), Address: t.Address, AddedAt: ms, ValidatedAt: ms})
	}
	return obj, nil
}

type usersPageResponse struct {
	Users     []adminUserListEntry `json:"users"`
	Total     int                  `json:"total"`
	NextToken string               `json:"next_token,omitempty"`
}

// userOrders maps Synapse's order_by values to authd's; the ones authd has
// no column for (displayname, avatar_url, is_guest, user_type,
// shadow_banned) sort by name, so that a web UI's column sort never fails.
var userOrders = map[string]store.UserOrder{
	"name": store.UserOrderName, "creation_ts": store.UserOrderCreated, "last_seen_ts": store.UserOrderLastSeen,
	"admin": store.UserOrderAdmin, "deactivated": store.UserOrderDeactivated, "locked": store.UserOrderLocked,
}

// handleListUsers handles GET /_synapse/admin/v2/users and /v3/users: a
// page of users (from, limit; next_token when there are more), filtered
// by name (localpart), user_id, admins, deactivated and locked, sorted by
// order_by and dir. In v2, deactivated=true includes the deactivated
// users, who are left out by default; in v3 it keeps only them, false
// leaves them out, and without it both are listed. Locked users are left
// out unless locked=true, as Synapse does. guests and not_user_type are
// accepted and change nothing: authd has neither.
func (a *api) handleListUsers(v3 bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := a.parseUserQuery(r.URL.Query(), v3)
		if err != nil {
			a.adminFailed(w, r, err)
			return
		}
		page, err := a.Store.ListUsersPage(r.Context(), q)
		if err != nil {
			a.adminFailed(w, r, err)
			return
		}
		resp := usersPageResponse{Users: make([]adminUserListEntry, 0, len(page.Users)), Total: page.Total}
		for _, u := range page.Users {
			resp.Users = append(resp.Users, newAdminUserListEntry(u.User, u.LastSeenAt))
		}
		if next := q.From + len(page.Users); len(page.Users) > 0 && next < page.Total {
			resp.NextToken = strconv.Itoa(next)
		}
		a.Observer.AdminAction(routePattern(r), "ok")
		writeJSON(w, http.StatusOK, resp)
	}
}

// parseUserQuery reads the query parameters of GET /users.
func (a *api) parseUserQuery(v url.Values, v3 bool) (store.UserQuery, error) {
	q := store.UserQuery{Limit: 100, Name: v.Get("name"), UserID: v.Get("user_id")}
	var err error
	if q.From, err = nonNegative(v, "from", 0); err != nil {
		return q, err
	}
	if q.Limit, err = nonNegative(v, "limit", 100); err != nil {
		return q, err
	}
	q.Limit = min(q.Limit, maxUsersPage)
	if q.Limit == 0 {
		return q, badRequest("M_INVALID_PARAM", "Query parameter limit must be positive")
	}
	flag := func(key string) (value, present bool, err error) {
		s := v.Get(key)
		switch s {
		case "":
			return false, false, nil
		case "true":
			return true, true, nil
		case "false":
			return false, true, nil
		}
		return false, false, badRequest("M_INVALID_PARAM", "Query parameter "+key+" must be true or false")
	}
	deactivated, deactivatedSet, err := flag("deactivated")
	if err != nil {
		return q, err
	}
	switch {
	case v3 && deactivatedSet && deactivated:
		q.Deactivated = store.TriTrue
	case v3 && !deactivatedSet:
		q.Deactivated = store.TriAny
	case !v3 && deactivated:
		q.Deactivated = store.TriAny
	default:
		q.Deactivated = store.TriFalse
	}
	admins, adminsSet, err := flag("admins")
	if err != nil {
		return q, err
	}
	if adminsSet {
		q.Admin = store.TriFalse
		if admins {
			q.Admin = store.TriTrue
		}
	}
	locked, _, err := flag("locked")
	if err != nil {
		return q, err
	}
	if !locked {
		q.Locked = store.TriFalse
	}
	if _, _, err := flag("guests"); err != nil {
		return q, err
	}
	q.OrderBy = userOrders[v.Get("order_by")]
	switch v.Get("dir") {
	case "", "f":
	case "b":
		q.Descending = true
	default:
		return q, badRequest("M_INVALID_PARAM", "Query parameter dir must be f or b")
	}
	return q, nil
}

// nonNegative reads an integer query parameter of at least zero.
func nonNegative(v url.Values, key string, def int) (int, error) {
	s := v.Get(key)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, badRequest("M_INVALID_PARAM", "Query parameter "+key+" must be a non-negative integer")
	}
	return n, nil
}

// handleGetUser handles GET /_synapse/admin/v2/users/{userId}: the user
// object.
func (a *api) handleGetUser(w http.ResponseWriter, r *http.Request) {
	u, err := a.targetUser(r, "M_UNKNOWN")
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	obj, err := a.adminUserObject(r, u)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	a.Observer.AdminAction(routePattern(r), "ok")
	writeJSON(w, http.StatusOK, obj)
}

// handlePutUser handles PUT /_synapse/admin/v2/users/{userId}: creates the
// user (201) or modifies it (200), answering with the user object. The
// keys authd owns are password, logout_devices (default true), threepids
// (the whole set), admin, deactivated and locked; every other key of the
// user object is accepted and ignored, since web UIs send the whole record
// back. A non-null user_type or a non-empty external_ids is refused:
// authd has neither. All of it is written in one transaction.
func (a *api) handlePutUser(w http.ResponseWriter, r *http.Request) {
	id, err := a.targetUserID(r, "M_UNKNOWN")
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	body, err := readJSONObject(w, r, true)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	c, pw, err := a.parseUserChange(r, id, body)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	existing, err := a.Store.FindUserByID(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Created by this request: the ID must be one registration would
		// give (lower case; an existing historical ID may be modified).
		if _, err := store.NewUserID(id, a.ServerName); err != nil {
			a.adminFailed(w, r, badRequest("M_INVALID_USERNAME", err.Error()))
			return
		}
		if pw == nil {
			a.adminFailed(w, r, badRequest("M_MISSING_PARAM", "A password is required to create a user"))
			return
		}
		if c.Deactivate {
			a.adminFailed(w, r, badRequest("M_INVALID_PARAM", "A new user cannot be deactivated"))
			return
		}
		c.Create = true
	case err != nil:
		a.adminFailed(w, r, err)
		return
	default:
		if c.Reactivate && existing.Deactivated() && pw == nil {
			a.adminFailed(w, r, badRequest("M_MISSING_PARAM", "A password is required to reactivate a user"))
			return
		}
	}
	if pw != nil {
		hash, err := a.hashAdminPassword(r, *pw)
		if err != nil {
			a.adminFailed(w, r, err)
			return
		}
		c.PasswordHash = &hash
	}
	res, err := a.Store.ModifyUser(r.Context(), c)
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = errUserNotFound // deleted since the lookup
	case errors.Is(err, store.ErrConflict):
		err = badRequest("M_THREEPID_IN_USE", "An address is already bound to another user")
	case errors.Is(err, store.ErrInvalidChange):
		err = badRequest("M_INVALID_PARAM", "The change contradicts itself or the account")
	}
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	a.forgetUserChange(res)
	obj, err := a.adminUserObject(r, res.User)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	a.adminDone(r, id, slog.Bool("created", res.Created), slog.Bool("password", pw != nil),
		slog.Int("devices_deleted", len(res.LoggedOut)+len(res.DeactivatedDevices)))
	writeJSON(w, status, obj)
}

// forgetUserChange drops from the token cache what a user change revoked
// or made invalid: the deleted devices, and every token of a user locked
// or deactivated (the store's notice reaches the other replicas).
func (a *api) forgetUserChange(res store.UserChangeResult) {
	if res.Deactivated || res.User.Locked() {
		a.cache.DropUser(res.User.ID)
		return
	}
	for _, d := range res.LoggedOut {
		a.cache.DropDevice(res.User.ID, d)
	}
}

// parseUserChange reads the keys of a PUT /users/{userId} body that authd
// owns. It returns the password separately, unhashed, for the caller to
// hash once the rest is known to be valid.
func (a *api) parseUserChange(r *http.Request, id string, body jsonObject) (store.UserChange, *string, error) {
	c := store.UserChange{UserID: id, Now: a.Now().UTC(), LogoutDevices: true}
	var pw *string
	if p, ok, err := body.str("password"); err != nil {
		return c, nil, badRequest("M_INVALID_PARAM", "password must be a string")
	} else if ok {
		if p == "" || len(p) > password.MaxLen {
			return c, nil, badRequest("M_INVALID_PARAM", "password must hold 1 to 1024 bytes")
		}
		pw = &p
	}
	if v, ok, err := body.boolean("logout_devices"); err != nil {
		return c, nil, badRequest("M_INVALID_PARAM", "logout_devices must be true or false")
	} else if ok {
		c.LogoutDevices = v
	}
	if v, ok, err := body.boolean("admin"); err != nil {
		return c, nil, badRequest("M_INVALID_PARAM", "admin must be true or false")
	} else if ok {
		if !v && id == adminFrom(r.Context()) {
			return c, nil, badRequest("M_INVALID_PARAM", "You may not demote yourself.")
		}
		c.Admin = &v
	}
	if v, ok, err := body.boolean("locked"); err != nil {
		return c, nil, badRequest("M_INVALID_PARAM", "locked must be true or false")
	} else if ok {
		c.Locked = &v
	}
	if v, ok, err := body.boolean("deactivated"); err != nil {
		return c, nil, badRequest("M_INVALID_PARAM", "deactivated must be true or false")
	} else if ok {
		c.Deactivate, c.Reactivate = v, !v
	}
	if c.Deactivate && c.Locked != nil && *c.Locked {
		return c, nil, badRequest("M_INVALID_PARAM", "An account cannot be both deactivated and locked")
	}
	if body.present("user_type") {
		return c, nil, badRequest("M_INVALID_PARAM", "authd has no user types: user_type must be null")
	}
	if body.present("external_ids") {
		var ids []json.RawMessage
		if err := json.Unmarshal(body["external_ids"], &ids); err != nil || len(ids) > 0 {
			return c, nil, badRequest("M_INVALID_PARAM", "authd has no external IDs: external_ids must be empty")
		}
	}
	if body.present("threepids") {
		tps, err := parseAdminThreePIDs(body["threepids"])
		if err != nil {
			return c, nil, err
		}
		c.ThreePIDs = &tps
	}
	return c, pw, nil
}

// maxAdminThreePIDs bounds the addresses one PUT may give a user.
const maxAdminThreePIDs = 100

// parseAdminThreePIDs reads the threepids of a PUT: medium and address of
// each (the timestamps a web UI sends back are ignored), addresses in
// canonical form.
func parseAdminThreePIDs(raw json.RawMessage) ([]store.ThreePID, error) {
	var items []jsonObject
	if err := json.Unmarshal(raw, &items); err != nil || len(items) > maxAdminThreePIDs {
		return nil, badRequest("M_INVALID_PARAM", "threepids must be a list of at most 100 {medium, address} objects")
	}
	tps := make([]store.ThreePID, 0, len(items))
	for _, it := range items {
		medium, _, err1 := it.str("medium")
		address, _, err2 := it.str("address")
		if it == nil || err1 != nil || err2 != nil {
			return nil, badRequest("M_INVALID_PARAM", "each threepid needs a medium and an address")
		}
		canonical, err := store.CanonicalAddress(store.Medium(medium), address)
		if err != nil {
			return nil, badRequest("M_INVALID_PARAM", "Unsupported or invalid threepid: "+quote(medium)+" "+quote(address))
		}
		tps = append(tps, store.ThreePID{Medium: store.Medium(medium), Address: canonical})
	}
	return tps, nil
}

// handleResetPassword handles POST /_synapse/admin/v1/reset_password/{userId}:
// new_password, and logout_devices (default true) ending every session of
// the user. It answers {}.
func (a *api) handleResetPassword(w http.ResponseWriter, r *http.Request) {
	id, err := a.targetUserID(r, "M_UNKNOWN")
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	body, err := readJSONObject(w, r, false)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	pw, ok, err := body.str("new_password")
	switch {
	case err != nil:
		err = badRequest("M_INVALID_PARAM", "new_password must be a string")
	case !ok || pw == "":
		err = badRequest("M_MISSING_PARAM", "Missing parameter: new_password")
	case len(pw) > password.MaxLen:
		err = badRequest("M_INVALID_PARAM", "new_password may not be longer than 1024 bytes")
	}
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	logout, ok, err := body.boolean("logout_devices")
	if err != nil {
		a.adminFailed(w, r, badRequest("M_INVALID_PARAM", "logout_devices must be true or false"))
		return
	}
	if !ok {
		logout = true
	}
	if _, err := a.Store.FindUserByID(r.Context(), id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = errUserNotFound
		}
		a.adminFailed(w, r, err)
		return
	}
	hash, err := a.hashAdminPassword(r, pw)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	res, err := a.Store.ModifyUser(r.Context(), store.UserChange{UserID: id, Now: a.Now().UTC(), PasswordHash: &hash, LogoutDevices: logout})
	if errors.Is(err, store.ErrNotFound) {
		err = errUserNotFound
	}
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	a.forgetUserChange(res)
	a.adminDone(r, id, slog.Bool("logout_devices", logout), slog.Int("devices_deleted", len(res.LoggedOut)))
	writeJSON(w, http.StatusOK, emptyResponse{})
}

type deactivateAdminResponse struct {
	IDServerUnbindResult string `json:"id_server_unbind_result"`
}

// handleAdminDeactivate handles POST /_synapse/admin/v1/deactivate/{userId}
// with an optional body {"erase": bool}: the rules of the user's own
// deactivation (every device, token and address and the password go), erase
// passed on to the homeserver. authd binds no address at an identity
// server, so there is nothing to unbind: "success".
func (a *api) handleAdminDeactivate(w http.ResponseWriter, r *http.Request) {
	id, err := a.targetUserID(r, "M_UNKNOWN")
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	body, err := readOptionalJSONObject(w, r)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	erase, _, err := body.boolean("erase")
	if err != nil {
		a.adminFailed(w, r, badRequest("M_INVALID_PARAM", "erase must be true or false"))
		return
	}
	err = a.Store.DeactivateUser(r.Context(), id, a.Now().UTC(), erase, store.UIAGrant{})
	if errors.Is(err, store.ErrNotFound) {
		err = errUserNotFound
	}
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	a.cache.DropUser(id)
	a.adminDone(r, id, slog.Bool("erase", erase))
	writeJSON(w, http.StatusOK, deactivateAdminResponse{IDServerUnbindResult: "success"})
}

type whoisConnection struct {
	IP       string `json:"ip,omitempty"`
	LastSeen int64  `json:"last_seen"`
}

type whoisSession struct {
	Connections []whoisConnection `json:"connections"`
}

type whoisDevice struct {
	Sessions []whoisSession `json:"sessions"`
}

type whoisResponse struct {
	UserID  string                 `json:"user_id"`
	Devices map[string]whoisDevice `json:"devices"`
}

// handleWhois handles GET /_synapse/admin/v1/whois/{userId} and the spec's
// /_matrix/client/{r0,v3}/admin/whois/{userId}: one session per device,
// with one connection: the address and time it was last seen. authd does
// not record user agents, so connections have none.
func (a *api) handleWhois(w http.ResponseWriter, r *http.Request) {
	u, err := a.targetUser(r, "M_INVALID_PARAM")
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	devices, err := a.Store.ListDevices(r.Context(), u.ID)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	resp := whoisResponse{UserID: u.ID, Devices: make(map[string]whoisDevice, len(devices))}
	for _, d := range devices {
		resp.Devices[d.ID] = whoisDevice{Sessions: []whoisSession{{Connections: []whoisConnection{
			{IP: d.LastSeenIP, LastSeen: d.LastSeenAt.UnixMilli()},
		}}}}
	}
	a.Observer.AdminAction(routePattern(r), "ok")
	writeJSON(w, http.StatusOK, resp)
}

type userIDResponse struct {
	UserID string `json:"user_id"`
}

// handleThreePIDOwner handles GET
// /_synapse/admin/v1/threepid/{medium}/users/{address}: the user the
// address (canonicalised first) is bound to, or 404.
func (a *api) handleThreePIDOwner(w http.ResponseWriter, r *http.Request) {
	medium, err1 := url.PathUnescape(chi.URLParam(r, "medium"))
	address, err2 := url.PathUnescape(chi.URLParam(r, "address"))
	canonical, err := store.CanonicalAddress(store.Medium(medium), address)
	if err1 != nil || err2 != nil || err != nil {
		a.adminFailed(w, r, errUserNotFound)
		return
	}
	u, err := a.Store.FindUserByThreePID(r.Context(), store.Medium(medium), canonical)
	if errors.Is(err, store.ErrNotFound) {
		err = errUserNotFound
	}
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	a.Observer.AdminAction(routePattern(r), "ok")
	writeJSON(w, http.StatusOK, userIDResponse{UserID: u.ID})
}

type adminFlagResponse struct {
	Admin bool `json:"admin"`
}

// handleGetAdmin handles GET /_synapse/admin/v1/users/{userId}/admin: the
// admin flag; a user may ask it of themselves.
func (a *api) handleGetAdmin(w http.ResponseWriter, r *http.Request) {
	u, err := a.targetUser(r, "M_UNKNOWN")
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	a.Observer.AdminAction(routePattern(r), "ok")
	writeJSON(w, http.StatusOK, adminFlagResponse{Admin: u.Admin})
}

// handleSetAdmin handles PUT /_synapse/admin/v1/users/{userId}/admin with
// {"admin": bool}. An admin may not demote themselves, so that the last
// admin cannot lock everyone out by accident.
func (a *api) handleSetAdmin(w http.ResponseWriter, r *http.Request) {
	id, err := a.targetUserID(r, "M_UNKNOWN")
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	body, err := readJSONObject(w, r, false)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	v, ok, err := body.boolean("admin")
	switch {
	case err != nil:
		err = badRequest("M_INVALID_PARAM", "admin must be true or false")
	case !ok:
		err = badRequest("M_MISSING_PARAM", "Missing parameter: admin")
	case !v && id == adminFrom(r.Context()):
		err = badRequest("M_INVALID_PARAM", "You may not demote yourself.")
	}
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	_, err = a.Store.ModifyUser(r.Context(), store.UserChange{UserID: id, Now: a.Now().UTC(), Admin: &v})
	if errors.Is(err, store.ErrNotFound) {
		err = errUserNotFound
	}
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	a.adminDone(r, id, slog.Bool("admin", v))
	writeJSON(w, http.StatusOK, emptyResponse{})
}

type lockResponse struct {
	Locked bool `json:"locked"`
}

// lockTarget is the user of a lock request: the spec's answers are 400
// M_INVALID_PARAM for a foreign ID, 404 for an unknown or deactivated one.
func (a *api) lockTarget(r *http.Request) (store.User, error) {
	u, err := a.targetUser(r, "M_INVALID_PARAM")
	if err == nil && u.Deactivated() {
		err = errUserNotFound
	}
	return u, err
}

// handleGetLock handles GET /_matrix/client/v1/admin/lock/{userId}.
func (a *api) handleGetLock(w http.ResponseWriter, r *http.Request) {
	u, err := a.lockTarget(r)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	a.Observer.AdminAction(routePattern(r), "ok")
	writeJSON(w, http.StatusOK, lockResponse{Locked: u.Locked()})
}

// handleSetLock handles PUT /_matrix/client/v1/admin/lock/{userId} with
// {"locked": bool}. A lock keeps the user's sessions: every request but
// logout is refused until the unlock, and then they work again. Locking
// oneself or another admin is forbidden (spec).
func (a *api) handleSetLock(w http.ResponseWriter, r *http.Request) {
	body, err := readJSONObject(w, r, false)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	locked, ok, err := body.boolean("locked")
	if err != nil || !ok {
		a.adminFailed(w, r, badRequest("M_BAD_JSON", "locked must be true or false"))
		return
	}
	u, err := a.lockTarget(r)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	if locked && (u.ID == adminFrom(r.Context()) || u.Admin) {
		a.adminFailed(w, r, &matrixError{Status: http.StatusForbidden, Errcode: "M_FORBIDDEN", Message: "An admin's account cannot be locked"})
		return
	}
	res, err := a.Store.ModifyUser(r.Context(), store.UserChange{UserID: u.ID, Now: a.Now().UTC(), Locked: &locked})
	if errors.Is(err, store.ErrNotFound) {
		err = errUserNotFound
	}
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	a.forgetUserChange(res)
	a.adminDone(r, u.ID, slog.Bool("locked", locked))
	writeJSON(w, http.StatusOK, lockResponse{Locked: res.User.Locked()})
}
