package api

import (
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
