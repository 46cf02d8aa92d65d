package api

import (
	"errors"
	"net/http"

	"github.com/authd/authd/internal/store"
)

// threePIDResponse is one third-party identifier of GET /account/3pid.
// authd binds only addresses the operator asserts, so an address is
// validated when it is added: both times are the time it was bound.
type threePIDResponse struct {
	Medium      store.Medium `json:"medium"`
	Address     string       `json:"address"`
	ValidatedAt int64        `json:"validated_at"`
	AddedAt     int64        `json:"added_at"`
}

type threePIDsResponse struct {
	ThreePIDs []threePIDResponse `json:"threepids"`
}

// handleListThreePIDs handles GET /account/3pid: the addresses bound to
// the caller's account.
func (a *api) handleListThreePIDs(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	tps, err := a.Store.ListThreePIDs(r.Context(), s.AccessToken.UserID)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	resp := threePIDsResponse{ThreePIDs: make([]threePIDResponse, 0, len(tps))}
	for _, t := range tps {
		ms := t.AddedAt.UnixMilli()
		resp.ThreePIDs = append(resp.ThreePIDs, threePIDResponse{Medium: t.Medium, Address: t.Address, ValidatedAt: ms, AddedAt: ms})
	}
	writeJSON(w, http.StatusOK, resp)
}

// handleDeleteThreePID handles POST /account/3pid/delete: it unbinds an
// address from the caller's account. The answer is the same whether the
// address was the caller's, another user's (left alone) or nobody's, so
// that it tells nobody who owns an address.
func (a *api) handleDeleteThreePID(w http.ResponseWriter, r *http.Request) {
	medium, address, err := a.parseDeleteThreePID(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	s := sessionFrom(r.Context())
	// An address that has no canonical form cannot be bound to anyone.
	if canonical, err := store.CanonicalAddress(medium, address); err == nil {
		err = a.Store.DeleteThreePID(r.Context(), s.AccessToken.UserID, medium, canonical)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			a.writeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, unbindResponse{IDServerUnbindResult: unbindNoSupport})
}

// parseDeleteThreePID validates a POST /account/3pid/delete body.
func (a *api) parseDeleteThreePID(w http.ResponseWriter, r *http.Request) (store.Medium, string, error) {
	body, err := readJSONObject(w, r, false)
	if err != nil {
		return "", "", err
	}
	if !body.present("medium") {
		return "", "", badRequest("M_MISSING_PARAM", "Missing parameter: medium")
	}
	medium, _, err := body.str("medium")
	if err != nil || (store.Medium(medium) != store.MediumEmail && store.Medium(medium) != store.MediumMSISDN) {
		return "", "", badRequest("M_INVALID_PARAM", "Bad parameter: medium")
	}
	if !body.present("address") {
		return "", "", badRequest("M_MISSING_PARAM", "Missing parameter: address")
	}
	address, _, err := body.str("address")
	if err != nil {
		return "", "", badRequest("M_INVALID_PARAM", "Bad parameter: address")
	}
	if _, _, err := body.str("id_server"); err != nil {
		return "", "", badRequest("M_INVALID_PARAM", "Bad parameter: id_server")
	}
	return store.Medium(medium), address, nil
}
