package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/authd/authd/internal/store"
)

// deviceResponse is one device as the device management endpoints show it.
// A device without a display name has no display_name key (not ""), and one
// without a known address no last_seen_ip (not logged in or used since
// addresses are kept, or they are not kept: Deps.LastSeenIP). Both may be an
// interval behind (see internal/lastseen), as the spec allows.
type deviceResponse struct {
	DeviceID    string `json:"device_id"`
	DisplayName string `json:"display_name,omitempty"`
	LastSeenIP  string `json:"last_seen_ip,omitempty"`
	LastSeenTS  int64  `json:"last_seen_ts"`
}

func newDeviceResponse(d store.Device) deviceResponse {
	return deviceResponse{DeviceID: d.ID, DisplayName: d.DisplayName, LastSeenIP: d.LastSeenIP, LastSeenTS: d.LastSeenAt.UnixMilli()}
}

type devicesResponse struct {
	Devices []deviceResponse `json:"devices"`
}

// handleListDevices handles GET /devices: every device of the caller.
func (a *api) handleListDevices(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	devices, err := a.Store.ListDevices(r.Context(), s.AccessToken.UserID)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	resp := devicesResponse{Devices: make([]deviceResponse, 0, len(devices))}
	for _, d := range devices {
		resp.Devices = append(resp.Devices, newDeviceResponse(d))
	}
	writeJSON(w, http.StatusOK, resp)
}

// handleGetDevice handles GET /devices/{deviceId}: one device of the
// caller. Another user's device is as unknown as one that does not exist.
func (a *api) handleGetDevice(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	id, ok := deviceIDParam(r)
	if !ok {
		a.writeError(w, r, errDeviceNotFound)
		return
	}
	d, err := a.Store.FindDevice(r.Context(), s.AccessToken.UserID, id)
	if errors.Is(err, store.ErrNotFound) {
		err = errDeviceNotFound
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newDeviceResponse(d))
}

// handleRenameDevice handles PUT /devices/{deviceId}: sets the display
// name of one device of the caller. A body without display_name changes
// nothing (the spec leaves the field optional); "" removes the name.
func (a *api) handleRenameDevice(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	id, ok := deviceIDParam(r)
	if !ok {
		a.writeError(w, r, errDeviceNotFound)
		return
	}
	body, err := readJSONObject(w, r, true)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	name, present, err := body.str("display_name")
	if err != nil {
		a.writeError(w, r, badRequest("M_INVALID_PARAM", "Bad parameter: display_name"))
		return
	}
	if err := checkDisplayName("display_name", name); err != nil {
		a.writeError(w, r, err)
		return
	}
	if present {
		err = a.Store.RenameDevice(r.Context(), s.AccessToken.UserID, id, name)
	} else {
		_, err = a.Store.FindDevice(r.Context(), s.AccessToken.UserID, id)
	}
	if errors.Is(err, store.ErrNotFound) {
		err = errDeviceNotFound
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyResponse{})
}

// deviceIDParam is the {deviceId} path segment, percent-decoded (chi
// routes on the escaped path, so that %2F stays inside the segment). A
// segment that does not decode to a device ID login would accept names no
// device.
func deviceIDParam(r *http.Request) (string, bool) {
	id, err := url.PathUnescape(chi.URLParam(r, "deviceId"))
	if err != nil || id == "" || len(id) > maxDeviceIDLen || !validDeviceID(id) {
		return "", false
	}
	return id, true
}

// checkDisplayName is the rule for a device's display name, at login
// (initial_device_display_name) and on rename (display_name): at most
// maxDisplayNameLen characters, no NUL (Postgres cannot store it).
func checkDisplayName(field, name string) error {
	if strings.ContainsRune(name, 0) {
		return badRequest("M_INVALID_PARAM", field+" may not contain NUL")
	}
	if utf8.RuneCountInString(name) > maxDisplayNameLen {
		return badRequest("M_INVALID_PARAM", field+" may not be longer than 256 characters")
	}
	return nil
}

// maxDeleteDevices bounds the devices list of one POST /delete_devices.
const maxDeleteDevices = 1000

// handleDeleteDevice handles DELETE /devices/{deviceId}: after
// User-Interactive Authentication, deletes one device of the caller and
// every token of it. A device the caller does not have (never had, or
// deleted already, or another user's) is answered 200 as well, as the spec
// lists: nothing is deleted. The body may be empty or the JSON null (mautrix
// sends null before it has an auth dict).
func (a *api) handleDeleteDevice(w http.ResponseWriter, r *http.Request) {
	body, err := readOptionalJSONObject(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var ids []string
	if id, ok := deviceIDParam(r); ok {
		ids = []string{id}
	}
	grant, ok := a.authenticateUIA(w, r, body)
	if !ok {
		return
	}
	a.deleteDevices(w, r, ids, grant)
}

// handleDeleteDevices handles POST /delete_devices: after User-Interactive
// Authentication, deletes the listed devices of the caller, all in one
// transaction. The list is checked before the challenge; IDs the caller
// has no device of are ignored, and an empty list deletes nothing.
func (a *api) handleDeleteDevices(w http.ResponseWriter, r *http.Request) {
	body, err := readJSONObject(w, r, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ids, err := parseDeviceList(body)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	grant, ok := a.authenticateUIA(w, r, body)
	if !ok {
		return
	}
	a.deleteDevices(w, r, ids, grant)
}

// parseDeviceList reads the devices key of a POST /delete_devices body:
// required, an array of at most maxDeleteDevices strings. IDs no device can
// have (see deviceIDParam) are dropped.
func parseDeviceList(body jsonObject) ([]string, error) {
	if !body.present("devices") {
		return nil, badRequest("M_MISSING_PARAM", "Missing parameter: devices")
	}
	var list []string
	if err := json.Unmarshal(body["devices"], &list); err != nil {
		return nil, badRequest("M_BAD_JSON", "devices must be an array of strings")
	}
	if len(list) > maxDeleteDevices {
		return nil, badRequest("M_INVALID_PARAM", "devices may not list more than 1000 devices")
	}
	ids := list[:0]
	for _, id := range list {
		if id != "" && len(id) <= maxDeviceIDLen && validDeviceID(id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// deleteDevices deletes the caller's devices ids under grant, forgets
// their tokens here at once (other replicas hear of it from the store's
// revocation notices), and answers 200 {}.
func (a *api) deleteDevices(w http.ResponseWriter, r *http.Request, ids []string, grant store.UIAGrant) {
	userID := sessionFrom(r.Context()).AccessToken.UserID
	deleted, err := a.Store.DeleteDevices(r.Context(), userID, ids, grant)
	for _, id := range deleted {
		a.cache.DropDevice(userID, id)
	}
	if err != nil {
		a.writeError(w, r, uiaGrantError(err))
		return
	}
	writeJSON(w, http.StatusOK, emptyResponse{})
}
