package api

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/authd/authd/internal/store"
)

// adminDevice is one device in the admin API, in Synapse's shape. authd
// records no user agents: last_seen_user_agent is always null.
type adminDevice struct {
	DeviceID          string  `json:"device_id"`
	DisplayName       *string `json:"display_name"`
	LastSeenIP        *string `json:"last_seen_ip"`
	LastSeenUserAgent *string `json:"last_seen_user_agent"`
	LastSeenTS        int64   `json:"last_seen_ts"`
	UserID            string  `json:"user_id"`
}

func newAdminDevice(d store.Device) adminDevice {
	out := adminDevice{DeviceID: d.ID, LastSeenTS: d.LastSeenAt.UnixMilli(), UserID: d.UserID}
	if d.DisplayName != "" {
		out.DisplayName = &d.DisplayName
	}
	if d.LastSeenIP != "" {
		out.LastSeenIP = &d.LastSeenIP
	}
	return out
}

type adminDevicesResponse struct {
	Devices []adminDevice `json:"devices"`
	Total   int           `json:"total"`
}

// handleAdminListDevices handles GET
// /_synapse/admin/v2/users/{userId}/devices: every device of the user.
// Paging and sort parameters are ignored, as Synapse ignores them.
func (a *api) handleAdminListDevices(w http.ResponseWriter, r *http.Request) {
	u, err := a.targetUser(r, "M_UNKNOWN")
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	devices, err := a.Store.ListDevices(r.Context(), u.ID)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	resp := adminDevicesResponse{Devices: make([]adminDevice, 0, len(devices)), Total: len(devices)}
	for _, d := range devices {
		resp.Devices = append(resp.Devices, newAdminDevice(d))
	}
	a.Observer.AdminAction(routePattern(r), "ok")
	writeJSON(w, http.StatusOK, resp)
}

// adminDeviceTarget is the user and device ID of a device route; an ID no
// device can have is errDeviceNotFound.
func (a *api) adminDeviceTarget(r *http.Request) (store.User, string, error) {
	u, err := a.targetUser(r, "M_UNKNOWN")
	if err != nil {
		return store.User{}, "", err
	}
	id, ok := deviceIDParam(r)
	if !ok {
		return store.User{}, "", errDeviceNotFound
	}
	return u, id, nil
}

// handleAdminGetDevice handles GET
// /_synapse/admin/v2/users/{userId}/devices/{deviceId}.
func (a *api) handleAdminGetDevice(w http.ResponseWriter, r *http.Request) {
	u, id, err := a.adminDeviceTarget(r)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	d, err := a.Store.FindDevice(r.Context(), u.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		err = errDeviceNotFound
	}
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	a.Observer.AdminAction(routePattern(r), "ok")
	writeJSON(w, http.StatusOK, newAdminDevice(d))
}

// handleAdminRenameDevice handles PUT
// /_synapse/admin/v2/users/{userId}/devices/{deviceId} with
// {"display_name"}, as the user's own rename does.
func (a *api) handleAdminRenameDevice(w http.ResponseWriter, r *http.Request) {
	u, id, err := a.adminDeviceTarget(r)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	body, err := readJSONObject(w, r, true)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	name, present, err := body.str("display_name")
	if err != nil {
		a.adminFailed(w, r, badRequest("M_INVALID_PARAM", "Bad parameter: display_name"))
		return
	}
	if err := checkDisplayName("display_name", name); err != nil {
		a.adminFailed(w, r, err)
		return
	}
	if present {
		err = a.Store.RenameDevice(r.Context(), u.ID, id, name)
	} else {
		_, err = a.Store.FindDevice(r.Context(), u.ID, id)
	}
	if errors.Is(err, store.ErrNotFound) {
		err = errDeviceNotFound
	}
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	a.adminDone(r, u.ID, slog.String("device", id))
	writeJSON(w, http.StatusOK, emptyResponse{})
}

// handleAdminDeleteDevice handles DELETE
// /_synapse/admin/v2/users/{userId}/devices/{deviceId}: the device and its
// tokens go, on every replica at once, as with the user's own deletion. A
// device the user does not have is answered {} as well (Synapse does).
func (a *api) handleAdminDeleteDevice(w http.ResponseWriter, r *http.Request) {
	u, err := a.targetUser(r, "M_UNKNOWN")
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	var ids []string
	if id, ok := deviceIDParam(r); ok {
		ids = []string{id}
	}
	a.adminDeleteDevices(w, r, u.ID, ids)
}

// handleAdminDeleteDevices handles POST
// /_synapse/admin/v2/users/{userId}/delete_devices with {"devices": [...]}.
func (a *api) handleAdminDeleteDevices(w http.ResponseWriter, r *http.Request) {
	u, err := a.targetUser(r, "M_UNKNOWN")
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	body, err := readJSONObject(w, r, false)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	ids, err := parseDeviceList(body)
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	a.adminDeleteDevices(w, r, u.ID, ids)
}

// adminDeleteDevices deletes devices of a user without UIA (the admin's
// token is the authority), forgets their tokens here at once, and answers
// {}.
func (a *api) adminDeleteDevices(w http.ResponseWriter, r *http.Request, userID string, ids []string) {
	deleted, err := a.Store.DeleteDevices(r.Context(), userID, ids, store.UIAGrant{})
	for _, id := range deleted {
		a.cache.DropDevice(userID, id)
	}
	if err != nil {
		a.adminFailed(w, r, err)
		return
	}
	a.adminDone(r, userID, slog.Any("devices_deleted", deleted))
	writeJSON(w, http.StatusOK, emptyResponse{})
}
