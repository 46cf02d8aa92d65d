package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

// adminOn turns the admin API on.
func adminOn(d *api.Deps) { d.AdminAPI, d.Version = true, "1.2.3" }

// adminFixture is a harness with the admin API on, an admin (@root) and a
// user (@bob, with an email) logged in, and their tokens.
type adminFixture struct {
	h               *harness
	root, bob       string // access tokens
	bobDevice       string
	rootID, bobID   string
	encBob, encRoot string // the IDs percent-encoded, as web UIs send them
}

func newAdminFixture(t *testing.T, st testStore, mutate ...func(*api.Deps)) adminFixture {
	t.Helper()
	h := newHarness(t, st, append([]func(*api.Deps){adminOn}, mutate...)...)
	f := adminFixture{h: h, rootID: "@root:" + serverName, bobID: "@bob:" + serverName}
	h.addUser(f.rootID, "root password")
	if _, err := st.ModifyUser(context.Background(), store.UserChange{UserID: f.rootID, Now: h.clock.t, Admin: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	h.addUser(f.bobID, "bob password", "bob@example.org")
	f.root = h.login(pwLogin("root", "root password")).str("access_token")
	r := h.login(pwLogin("bob", "bob password"))
	f.bob, f.bobDevice = r.str("access_token"), r.str("device_id")
	f.encBob, f.encRoot = url.PathEscape(f.bobID), url.PathEscape(f.rootID)
	f.encBob = strings.ReplaceAll(strings.ReplaceAll(f.encBob, "@", "%40"), ":", "%3A")
	f.encRoot = strings.ReplaceAll(strings.ReplaceAll(f.encRoot, "@", "%40"), ":", "%3A")
	return f
}

func ptr[T any](v T) *T { return &v }

// pwLogin is the body of a password login of a localpart.
func pwLogin(user, pw string) string {
	return `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"` + user + `"},"password":"` + pw + `"}`
}

// adminRoutes is every admin route with a target user, as method, path
// with %s for the user ID, and a body.
var adminRoutes = []struct{ method, path, body string }{
	{"GET", "/_synapse/admin/v2/users/%s", ""},
	{"PUT", "/_synapse/admin/v2/users/%s", `{"admin":true}`},
	{"POST", "/_synapse/admin/v1/reset_password/%s", `{"new_password":"x"}`},
	{"POST", "/_synapse/admin/v1/deactivate/%s", `{}`},
	{"GET", "/_synapse/admin/v1/whois/%s", ""},
	{"GET", "/_synapse/admin/v2/users/%s/devices", ""},
	{"GET", "/_synapse/admin/v2/users/%s/devices/DEV", ""},
	{"PUT", "/_synapse/admin/v2/users/%s/devices/DEV", `{"display_name":"x"}`},
	{"DELETE", "/_synapse/admin/v2/users/%s/devices/DEV", ""},
	{"POST", "/_synapse/admin/v2/users/%s/delete_devices", `{"devices":["DEV"]}`},
	{"PUT", "/_synapse/admin/v1/users/%s/admin", `{"admin":true}`},
	{"GET", "/_matrix/client/v1/admin/lock/%s", ""},
	{"PUT", "/_matrix/client/v1/admin/lock/%s", `{"locked":true}`},
	// A user may ask these of themselves only.
	{"GET", "/_synapse/admin/v1/users/%s/admin", ""},
	{"GET", "/_matrix/client/v3/admin/whois/%s", ""},
	{"GET", "/_matrix/client/r0/admin/whois/%s", ""},
}

// adminListRoutes take no target user.
var adminListRoutes = []string{
	"/_synapse/admin/v2/users?from=0&limit=10",
	"/_synapse/admin/v3/users",
	"/_synapse/admin/v1/threepid/email/users/bob@example.org",
	"/_synapse/admin/v1/threepid/email/users/nobody@example.org",
}

// A non-admin's token is refused on every admin route with one body,
// whether the target exists or not, and nothing changes; with the API off,
// no route exists at all, whoever asks.
func TestAdmin_NonAdminAndOff(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		f := newAdminFixture(t, st)
		h := f.h
		var first string
		for _, rt := range adminRoutes {
			for _, target := range []string{"@root:" + serverName, "%40nobody%3A" + serverName, "@nobody:elsewhere.org"} {
				r := h.do(rt.method, strings.Replace(rt.path, "%s", target, 1), rt.body, bearer(f.bob))
				wantError(t, r, 403, "M_FORBIDDEN")
				if first == "" {
					first = r.raw
				}
				if r.raw != first {
					t.Fatalf("%s %s for %s: body %s differs from %s", rt.method, rt.path, target, r.raw, first)
				}
			}
		}
		for _, p := range adminListRoutes {
			r := h.do("GET", p, "", bearer(f.bob))
			wantError(t, r, 403, "M_FORBIDDEN")
			if r.raw != first {
				t.Fatalf("GET %s: body %s differs from %s", p, r.raw, first)
			}
		}
		// Nothing changed: root is still an admin and unlocked, bob's
		// session alive.
		u, err := st.FindUserByID(context.Background(), f.rootID)
		if err != nil || !u.Admin || u.Locked() || u.Deactivated() {
			t.Fatalf("root after the refused requests: %+v, %v", u, err)
		}
		wantLive(t, h, f.bob, f.bobID)
		// Without a token, the usual 401.
		wantError(t, h.do("GET", "/_synapse/admin/v2/users", ""), 401, "M_MISSING_TOKEN")

		off := newHarness(t, st)
		for _, rt := range adminRoutes {
			r := off.do(rt.method, strings.Replace(rt.path, "%s", f.encBob, 1), rt.body, bearer(f.root))
			wantError(t, r, 404, "M_UNRECOGNIZED")
		}
		for _, p := range append(adminListRoutes, "/_synapse/admin/v1/server_version") {
			wantError(t, off.do("GET", p, "", bearer(f.root)), 404, "M_UNRECOGNIZED")
		}
	})
}

// A user may ask about themselves on the two routes that allow it.
func TestAdmin_Self(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		f := newAdminFixture(t, st)
		r := f.h.do("GET", "/_synapse/admin/v1/users/"+f.encBob+"/admin", "", bearer(f.bob))
		if r.status != 200 || r.body["admin"] != false {
			t.Fatalf("own admin flag = %d %s", r.status, r.raw)
		}
		r = f.h.do("GET", "/_matrix/client/v3/admin/whois/"+f.bobID, "", bearer(f.bob))
		if r.status != 200 || r.str("user_id") != f.bobID {
			t.Fatalf("whois self = %d %s", r.status, r.raw)
		}
		r = f.h.do("GET", "/_synapse/admin/v1/users/"+f.encRoot+"/admin", "", bearer(f.root))
		if r.status != 200 || r.body["admin"] != true {
			t.Fatalf("root's admin flag = %d %s", r.status, r.raw)
		}
	})
}

// The requests synapse-admin and Ketesa send from their Users pages, with
// their exact query strings and bodies (the whole-record edit with its
// nulls and UI-only keys), get what those UIs read.
func TestAdmin_SynapseAdminReplay(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		f := newAdminFixture(t, st)
		h := f.h
		// Login page: server version, then the login with device_id null.
		r := h.do("GET", "/_synapse/admin/v1/server_version", "")
		if r.status != 200 || r.str("server_version") != "authd 1.2.3" {
			t.Fatalf("server_version = %d %s", r.status, r.raw)
		}
		r = h.do("POST", "/_matrix/client/r0/login",
			`{"device_id":null,"initial_device_display_name":"Synapse Admin","type":"m.login.password","user":"root","password":"root password","identifier":{"type":"m.id.user","user":"root"}}`)
		if r.status != 200 || r.str("user_id") != f.rootID || r.str("home_server") != serverName || r.str("device_id") == "" {
			t.Fatalf("synapse-admin login = %d %s", r.status, r.raw)
		}
		admin := bearer(r.str("access_token"))

		// Users list (synapse-admin v2, Ketesa v3).
		for _, p := range []string{
			"/_synapse/admin/v2/users?from=0&limit=10&guests=true&deactivated=false&locked=false&order_by=name&dir=f",
			"/_synapse/admin/v3/users?from=0&limit=10&guests=true&deactivated=false&locked=false&order_by=name&dir=f",
			"/_synapse/admin/v2/users?from=0&limit=10&order_by=displayname&dir=b",
		} {
			r = h.do("GET", p, "", admin)
			if r.status != 200 || r.body["total"] != float64(2) {
				t.Fatalf("GET %s = %d %s", p, r.status, r.raw)
			}
			users := r.body["users"].([]any)
			names := []string{}
			for _, u := range users {
				m := u.(map[string]any)
				names = append(names, m["name"].(string))
				for _, k := range []string{"name", "displayname", "avatar_url", "is_guest", "admin", "deactivated", "locked", "erased", "creation_ts", "user_type", "shadow_banned", "last_seen_ts"} {
					if _, ok := m[k]; !ok {
						t.Fatalf("GET %s: user without %s: %v", p, k, m)
					}
				}
			}
			want := []string{f.bobID, f.rootID}
			if strings.Contains(p, "dir=b") {
				want = []string{f.rootID, f.bobID}
			}
			if strings.Join(names, " ") != strings.Join(want, " ") {
				t.Fatalf("GET %s: users %v, want %v", p, names, want)
			}
		}

		// Show: the user object, creation_ts in seconds.
		r = h.do("GET", "/_synapse/admin/v2/users/"+f.encBob, "", admin)
		if r.status != 200 || r.str("name") != f.bobID || r.body["creation_ts"] != float64(h.clock.t.Unix()) ||
			r.body["admin"] != false || r.body["deactivated"] != false || r.body["locked"] != false {
			t.Fatalf("show bob = %d %s", r.status, r.raw)
		}
		tps := r.body["threepids"].([]any)
		if len(tps) != 1 || tps[0].(map[string]any)["address"] != "bob@example.org" || tps[0].(map[string]any)["validated_at"] == nil {
			t.Fatalf("bob's threepids %v", tps)
		}
		if r.body["last_seen_ts"] != float64(h.clock.t.UnixMilli()) {
			t.Fatalf("bob's last_seen_ts %v, want his login's", r.body["last_seen_ts"])
		}
		shown := r.body

		// Create, as the Create page sends it.
		r = h.do("PUT", "/_synapse/admin/v2/users/%40carol%3A"+serverName,
			`{"id":"carol","displayname":"Carol","password":"carol password","user_type":null,"admin":false,"threepids":[{"medium":"email","address":"Carol@Example.org"}],"external_ids":[]}`, admin)
		if r.status != 201 || r.str("name") != "@carol:"+serverName {
			t.Fatalf("create carol = %d %s", r.status, r.raw)
		}
		if tps := r.body["threepids"].([]any); len(tps) != 1 || tps[0].(map[string]any)["address"] != "carol@example.org" {
			t.Fatalf("carol's threepids %v", tps)
		}
		h.login(`{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"carol@example.org"},"password":"carol password"}`)

		// Edit → Save: the whole record back, with the UI's own keys and
		// nulls, one change (admin on). Nothing else changes, and bob
		// stays logged in (no password was sent).
		shown["id"], shown["avatar_src"], shown["creation_ts_ms"] = f.bobID, nil, shown["creation_ts"].(float64)*1000
		shown["admin"] = true
		delete(shown, "displayname")
		body, _ := json.Marshal(shown)
		r = h.do("PUT", "/_synapse/admin/v2/users/"+f.encBob, string(body), admin)
		if r.status != 200 || r.body["admin"] != true || len(r.body["threepids"].([]any)) != 1 {
			t.Fatalf("edit bob = %d %s", r.status, r.raw)
		}
		wantLive(t, h, f.bob, f.bobID)

		// Devices tab, then remove the device (no body).
		r = h.do("GET", "/_synapse/admin/v2/users/"+f.encBob+"/devices?from=0&limit=10&order_by=last_seen_ts&dir=b", "", admin)
		devices, _ := r.body["devices"].([]any)
		if r.status != 200 || r.body["total"] != float64(1) || len(devices) != 1 {
			t.Fatalf("devices = %d %s", r.status, r.raw)
		}
		d := devices[0].(map[string]any)
		if d["device_id"] != f.bobDevice || d["user_id"] != f.bobID || d["last_seen_ts"] != float64(h.clock.t.UnixMilli()) {
			t.Fatalf("device %v", d)
		}
		for _, k := range []string{"display_name", "last_seen_ip", "last_seen_user_agent"} {
			if _, ok := d[k]; !ok {
				t.Fatalf("device without %s: %v", k, d)
			}
		}
		// Connections tab.
		r = h.do("GET", "/_synapse/admin/v1/whois/"+f.encBob, "", admin)
		conns := r.body["devices"].(map[string]any)[f.bobDevice].(map[string]any)["sessions"].([]any)[0].(map[string]any)["connections"].([]any)
		if r.status != 200 || len(conns) != 1 || conns[0].(map[string]any)["last_seen"] != float64(h.clock.t.UnixMilli()) {
			t.Fatalf("whois = %d %s", r.status, r.raw)
		}
		r = h.do("DELETE", "/_synapse/admin/v2/users/"+f.encBob+"/devices/"+f.bobDevice, "", admin)
		if r.status != 200 || r.raw != "{}" {
			t.Fatalf("remove device = %d %s", r.status, r.raw)
		}
		wantRevoked(t, h, f.bob)

		// Erase (the delete button).
		r = h.do("POST", "/_synapse/admin/v1/deactivate/%40carol%3A"+serverName, `{"erase":true}`, admin)
		if r.status != 200 || r.str("id_server_unbind_result") != "success" {
			t.Fatalf("erase carol = %d %s", r.status, r.raw)
		}
		wantError(t, h.do("POST", "/_matrix/client/v3/login", pwLogin("carol", "carol password")), 403, "M_FORBIDDEN")
		r = h.do("GET", "/_synapse/admin/v2/users/%40carol%3A"+serverName, "", admin)
		if r.body["deactivated"] != true || len(r.body["threepids"].([]any)) != 0 {
			t.Fatalf("carol after erase: %s", r.raw)
		}
		// The list leaves her out by default (v2) and shows her with
		// deactivated=true.
		r = h.do("GET", "/_synapse/admin/v2/users?deactivated=true&name=carol", "", admin)
		if r.body["total"] != float64(1) {
			t.Fatalf("deactivated carol listed: %s", r.raw)
		}
		r = h.do("GET", "/_synapse/admin/v2/users?name=carol", "", admin)
		if r.body["total"] != float64(0) {
			t.Fatalf("deactivated carol listed by default: %s", r.raw)
		}
	})
}

// Paging follows next_token to the end; bad query values are refused.
func TestAdmin_ListPaging(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		f := newAdminFixture(t, st)
		for _, name := range []string{"ann", "ben", "cat"} {
			f.h.addUser("@"+name+":"+serverName, "pw")
		}
		var names []string
		from := "0"
		for pages := 0; from != ""; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			r := f.h.do("GET", "/_synapse/admin/v2/users?limit=2&from="+from, "", bearer(f.root))
			if r.status != 200 || r.body["total"] != float64(5) {
				t.Fatalf("page from %s = %d %s", from, r.status, r.raw)
			}
			for _, u := range r.body["users"].([]any) {
				names = append(names, u.(map[string]any)["name"].(string))
			}
			from = r.str("next_token")
		}
		if got := strings.Join(names, " "); got != "@ann:example.org @ben:example.org @bob:example.org @cat:example.org @root:example.org" {
			t.Fatalf("paged users %s", got)
		}
		for _, q := range []string{"limit=-1", "from=x", "dir=sideways", "deactivated=maybe", "limit=0"} {
			wantError(t, f.h.do("GET", "/_synapse/admin/v2/users?"+q, "", bearer(f.root)), 400, "M_INVALID_PARAM")
		}
		// Filters: admins, user_id, name in any case.
		r := f.h.do("GET", "/_synapse/admin/v2/users?admins=true", "", bearer(f.root))
		if r.body["total"] != float64(1) {
			t.Fatalf("admins: %s", r.raw)
		}
		r = f.h.do("GET", "/_synapse/admin/v2/users?user_id=%40BO", "", bearer(f.root))
		if r.body["total"] != float64(1) {
			t.Fatalf("user_id: %s", r.raw)
		}
	})
}

// PUT refuses what authd cannot do or the account forbids, and writes
// nothing then.
func TestAdmin_PutErrors(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		f := newAdminFixture(t, st)
		h, root := f.h, bearer(f.root)
		for _, tt := range []struct {
			name, path, body, errcode string
		}{
			{"no password on create", "/_synapse/admin/v2/users/@new:" + serverName, `{"admin":true}`, "M_MISSING_PARAM"},
			{"upper case", "/_synapse/admin/v2/users/@New:" + serverName, `{"password":"pw"}`, "M_INVALID_USERNAME"},
			{"foreign server", "/_synapse/admin/v2/users/@new:elsewhere.org", `{"password":"pw"}`, "M_UNKNOWN"},
			{"not a user ID", "/_synapse/admin/v2/users/new", `{"password":"pw"}`, "M_INVALID_PARAM"},
			{"user_type", "/_synapse/admin/v2/users/" + f.encBob, `{"user_type":"bot"}`, "M_INVALID_PARAM"},
			{"external_ids", "/_synapse/admin/v2/users/" + f.encBob, `{"external_ids":[{"auth_provider":"x","external_id":"y"}]}`, "M_INVALID_PARAM"},
			{"deactivated and locked", "/_synapse/admin/v2/users/" + f.encBob, `{"deactivated":true,"locked":true}`, "M_INVALID_PARAM"},
			{"self demotion", "/_synapse/admin/v2/users/" + f.encRoot, `{"admin":false}`, "M_INVALID_PARAM"},
			{"address in use", "/_synapse/admin/v2/users/" + f.encRoot, `{"admin":true,"threepids":[{"medium":"email","address":"bob@example.org"}]}`, "M_THREEPID_IN_USE"},
			{"bad address", "/_synapse/admin/v2/users/" + f.encRoot, `{"threepids":[{"medium":"email","address":"nope"}]}`, "M_INVALID_PARAM"},
			{"password not a string", "/_synapse/admin/v2/users/" + f.encBob, `{"password":12}`, "M_INVALID_PARAM"},
		} {
			r := h.do("PUT", tt.path, tt.body, root)
			if r.status != 400 || r.str("errcode") != tt.errcode {
				t.Fatalf("%s: %d %s, want 400 %s", tt.name, r.status, r.raw, tt.errcode)
			}
		}
		if _, err := st.FindUserByID(context.Background(), "@new:"+serverName); err == nil {
			t.Fatal("a refused create wrote the user")
		}
		tps, _ := st.ListThreePIDs(context.Background(), f.rootID)
		if len(tps) != 0 {
			t.Fatalf("root's addresses after refused changes: %v", tps)
		}
		wantLive(t, h, f.bob, f.bobID)
		wantError(t, h.do("GET", "/_synapse/admin/v2/users/%40nobody%3A"+serverName, "", root), 404, "M_NOT_FOUND")
		wantError(t, h.do("POST", "/_synapse/admin/v1/reset_password/%40nobody%3A"+serverName, `{"new_password":"x"}`, root), 404, "M_NOT_FOUND")
		wantError(t, h.do("POST", "/_synapse/admin/v1/deactivate/%40nobody%3A"+serverName, "", root), 404, "M_NOT_FOUND")
	})
}

// reset_password with and without logout, and reactivation with a new
// password.
func TestAdmin_PasswordAndReactivation(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		f := newAdminFixture(t, st)
		h, root := f.h, bearer(f.root)
		r := h.do("POST", "/_synapse/admin/v1/reset_password/"+f.bobID, `{"new_password":"second","logout_devices":false}`, root)
		if r.status != 200 || r.raw != "{}" {
			t.Fatalf("reset without logout = %d %s", r.status, r.raw)
		}
		wantLive(t, h, f.bob, f.bobID)
		wantError(t, h.do("POST", "/_matrix/client/v3/login", `{"type":"m.login.password","user":"bob","password":"bob password"}`), 403, "M_FORBIDDEN")
		h.login(`{"type":"m.login.password","user":"bob","password":"second"}`)
		r = h.do("POST", "/_synapse/admin/v1/reset_password/"+f.encBob, `{"new_password":"third"}`, root)
		if r.status != 200 {
			t.Fatalf("reset = %d %s", r.status, r.raw)
		}
		wantRevoked(t, h, f.bob)
		if devices, _ := st.ListDevices(context.Background(), f.bobID); len(devices) != 0 {
			t.Fatalf("devices after a reset with logout: %v", devices)
		}
		// Deactivate (empty body), then reactivate: only with a password.
		r = h.do("POST", "/_synapse/admin/v1/deactivate/"+f.encBob, "", root)
		if r.status != 200 || r.str("id_server_unbind_result") != "success" {
			t.Fatalf("deactivate = %d %s", r.status, r.raw)
		}
		wantError(t, h.do("PUT", "/_synapse/admin/v2/users/"+f.encBob, `{"deactivated":false}`, root), 400, "M_MISSING_PARAM")
		r = h.do("PUT", "/_synapse/admin/v2/users/"+f.encBob, `{"deactivated":false,"password":"fourth"}`, root)
		if r.status != 200 || r.body["deactivated"] != false {
			t.Fatalf("reactivate = %d %s", r.status, r.raw)
		}
		h.login(`{"type":"m.login.password","user":"bob","password":"fourth"}`)
		// The admin flag route.
		if r := h.do("PUT", "/_synapse/admin/v1/users/"+f.encBob+"/admin", `{"admin":true}`, root); r.status != 200 {
			t.Fatalf("make bob admin = %d %s", r.status, r.raw)
		}
		u, _ := st.FindUserByID(context.Background(), f.bobID)
		if !u.Admin {
			t.Fatal("bob is not an admin")
		}
		wantError(t, h.do("PUT", "/_synapse/admin/v1/users/"+f.encRoot+"/admin", `{"admin":false}`, root), 400, "M_INVALID_PARAM")
	})
}

// Admin device routes: rename, get, delete_devices.
func TestAdmin_Devices(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		f := newAdminFixture(t, st)
		h, root := f.h, bearer(f.root)
		path := "/_synapse/admin/v2/users/" + f.encBob + "/devices/" + f.bobDevice
		if r := h.do("PUT", path, `{"display_name":"Named by the admin"}`, root); r.status != 200 {
			t.Fatalf("rename = %d %s", r.status, r.raw)
		}
		r := h.do("GET", path, "", root)
		if r.status != 200 || r.str("display_name") != "Named by the admin" {
			t.Fatalf("get = %d %s", r.status, r.raw)
		}
		wantError(t, h.do("GET", "/_synapse/admin/v2/users/"+f.encBob+"/devices/NOPE", "", root), 404, "M_NOT_FOUND")
		wantError(t, h.do("POST", "/_synapse/admin/v2/users/"+f.encBob+"/delete_devices", `{}`, root), 400, "M_MISSING_PARAM")
		if r := h.do("POST", "/_synapse/admin/v2/users/"+f.encBob+"/delete_devices", `{"devices":["`+f.bobDevice+`","NOPE"]}`, root); r.status != 200 || r.raw != "{}" {
			t.Fatalf("delete_devices = %d %s", r.status, r.raw)
		}
		wantRevoked(t, h, f.bob)
		r = h.do("GET", "/_synapse/admin/v1/threepid/email/users/BOB@example.org", "", root)
		if r.status != 200 || r.str("user_id") != f.bobID {
			t.Fatalf("threepid lookup = %d %s", r.status, r.raw)
		}
		wantError(t, h.do("GET", "/_synapse/admin/v1/threepid/email/users/nobody@example.org", "", root), 404, "M_NOT_FOUND")
	})
}

// Locking: the spec's rules for the lock endpoint, then a locked account
// is refused everywhere but logout, keeps its session, and gets it back
// at the unlock.
func TestAdmin_Lock(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		f := newAdminFixture(t, st, func(d *api.Deps) {
			d.Tokens = api.TokenPolicy{IssueRefresh: true, AccessTTL: 3600e9}
		})
		h, root := f.h, bearer(f.root)
		lock := func(id, body string) response { return h.do("PUT", "/_matrix/client/v1/admin/lock/"+id, body, root) }
		wantError(t, lock(f.encRoot, `{"locked":true}`), 403, "M_FORBIDDEN")
		wantError(t, lock("%40nobody%3A"+serverName, `{"locked":true}`), 404, "M_NOT_FOUND")
		wantError(t, lock("@bob:elsewhere.org", `{"locked":true}`), 400, "M_INVALID_PARAM")
		wantError(t, lock(f.encBob, `{}`), 400, "M_BAD_JSON")

		refresh := h.login(`{"type":"m.login.password","user":"bob","password":"bob password","refresh_token":true}`)
		wantLive(t, h, f.bob, f.bobID) // cached now
		r := lock(f.encBob, `{"locked":true}`)
		if r.status != 200 || r.body["locked"] != true {
			t.Fatalf("lock = %d %s", r.status, r.raw)
		}
		if r := h.do("GET", "/_matrix/client/v1/admin/lock/"+f.bobID, "", root); r.body["locked"] != true {
			t.Fatalf("lock status %s", r.raw)
		}
		for _, p := range []string{"/_matrix/client/v3/account/whoami", "/_matrix/client/v3/devices", "/_authd/verify"} {
			r := h.do("GET", p, "", bearer(f.bob))
			wantError(t, r, 401, "M_USER_LOCKED")
			if r.body["soft_logout"] != true {
				t.Fatalf("%s: %s, want soft_logout true", p, r.raw)
			}
		}
		// No new tokens: refresh and login are refused, and nothing is
		// rotated.
		wantError(t, h.do("POST", "/_matrix/client/v3/refresh", `{"refresh_token":"`+refresh.str("refresh_token")+`"}`), 401, "M_USER_LOCKED")
		wantError(t, h.do("POST", "/_matrix/client/v3/login", `{"type":"m.login.password","user":"bob","password":"bob password"}`), 401, "M_USER_LOCKED")
		// A wrong password does not learn of the lock.
		wantError(t, h.do("POST", "/_matrix/client/v3/login", `{"type":"m.login.password","user":"bob","password":"wrong"}`), 403, "M_FORBIDDEN")
		// Logout works, on the refresh login's device.
		if r := h.do("POST", "/_matrix/client/v3/logout", "", bearer(refresh.str("access_token"))); r.status != 200 {
			t.Fatalf("logout while locked = %d %s", r.status, r.raw)
		}
		// Unlock: the first session works again, the same token.
		if r := lock(f.encBob, `{"locked":false}`); r.status != 200 || r.body["locked"] != false {
			t.Fatalf("unlock = %d %s", r.status, r.raw)
		}
		wantLive(t, h, f.bob, f.bobID)
		wantRevoked(t, h, refresh.str("access_token"))
		// Another admin cannot be locked either.
		h.do("PUT", "/_synapse/admin/v1/users/"+f.encBob+"/admin", `{"admin":true}`, root)
		wantError(t, lock(f.encBob, `{"locked":true}`), 403, "M_FORBIDDEN")
	})
}

// An admin token from the CLI authorises the admin API and nothing else,
// until it expires or is revoked.
func TestAdmin_AdminToken(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		f := newAdminFixture(t, st)
		h := f.h
		tok := token.New(token.Admin)
		if err := st.CreateAdminToken(context.Background(), store.AdminToken{
			ID: "ops", Hash: token.Hash(tok), Name: "ansible", CreatedAt: h.clock.t, ExpiresAt: h.clock.t.Add(time.Hour),
		}); err != nil {
			t.Fatal(err)
		}
		r := h.do("GET", "/_synapse/admin/v2/users", "", bearer(tok))
		if r.status != 200 || r.body["total"] != float64(2) {
			t.Fatalf("users with an admin token = %d %s", r.status, r.raw)
		}
		// It may change anything, even demote an admin (it is no user).
		r = h.do("PUT", "/_synapse/admin/v2/users/"+f.encRoot, `{"admin":false}`, bearer(tok))
		if r.status != 200 || r.body["admin"] != false {
			t.Fatalf("demote root with an admin token = %d %s", r.status, r.raw)
		}
		// It is no access token.
		wantError(t, h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(tok)), 401, "M_UNKNOWN_TOKEN")
		wantError(t, h.do("GET", "/_authd/verify", "", bearer(tok)), 401, "M_UNKNOWN_TOKEN")
		// Expired, then revoked: refused.
		h.clock.t = h.clock.t.Add(time.Hour)
		wantError(t, h.do("GET", "/_synapse/admin/v2/users", "", bearer(tok)), 401, "M_UNKNOWN_TOKEN")
		h.clock.t = h.clock.t.Add(-time.Minute)
		if err := st.DeleteAdminToken(context.Background(), "ops"); err != nil {
			t.Fatal(err)
		}
		wantError(t, h.do("GET", "/_synapse/admin/v2/users", "", bearer(tok)), 401, "M_UNKNOWN_TOKEN")
		// A made-up admin token with a valid checksum is unknown too.
		wantError(t, h.do("GET", "/_synapse/admin/v2/users", "", bearer(token.New(token.Admin))), 401, "M_UNKNOWN_TOKEN")
	})
}

// adminObserver counts AdminAction calls by route and outcome, and
// nothing else.
type adminObserver struct {
	mu      sync.Mutex
	actions map[string]int
}

func (o *adminObserver) Request(string, string, int, time.Duration) {}
func (o *adminObserver) LoginAttempt(string)                        {}
func (o *adminObserver) RateLimited(string)                         {}
func (o *adminObserver) HashWait(time.Duration)                     {}
func (o *adminObserver) HashDuration(time.Duration)                 {}

func (o *adminObserver) AdminAction(route, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.actions[route+" "+outcome]++
}

// Every admin action is counted by route and outcome and logged with the
// admin and the target; no password, token or MAC reaches the log.
func TestAdmin_LogsAndMetrics(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		var logs syncBuffer
		obs := &adminObserver{actions: map[string]int{}}
		f := newAdminFixture(t, st, func(d *api.Deps) {
			d.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			d.Observer = obs
			d.RegistrationSharedSecret = []byte(sharedSecret)
		})
		h := f.h
		const newPW, createPW, regPW = "a new password for bob", "carol's first password", "registered password"
		wantOK(t, h.do("POST", "/_synapse/admin/v1/reset_password/"+f.encBob, `{"new_password":"`+newPW+`"}`, bearer(f.root)))
		if r := h.do("PUT", "/_synapse/admin/v2/users/@carol:"+serverName, `{"password":"`+createPW+`"}`, bearer(f.root)); r.status != 201 {
			t.Fatalf("create = %d %s", r.status, r.raw)
		}
		wantError(t, h.do("GET", "/_synapse/admin/v2/users/@nobody:"+serverName, "", bearer(f.root)), 404, "M_NOT_FOUND")
		wantError(t, h.do("GET", "/_synapse/admin/v2/users", "", bearer(h.login(pwLogin("carol", createPW)).str("access_token"))), 403, "M_FORBIDDEN")
		n := h.do("GET", "/_synapse/admin/v1/register", "").str("nonce")
		mac := registrationMAC(sharedSecret, n, "dora", regPW, false)
		reg := h.do("POST", "/_synapse/admin/v1/register", registerBody(n, "dora", regPW, false, mac))
		wantOK(t, reg)

		for key, want := range map[string]int{
			"/_synapse/admin/v1/reset_password/{userId} ok": 1,
			"/_synapse/admin/v2/users/{userId} ok":          1,
			"/_synapse/admin/v2/users/{userId} refused":     1,
			"/_synapse/admin/v2/users forbidden":            1,
		} {
			if got := obs.actions[key]; got != want {
				t.Errorf("AdminAction %q = %d, want %d (all: %v)", key, got, want, obs.actions)
			}
		}
		out := logs.String()
		if !strings.Contains(out, `"msg":"admin action"`) || !strings.Contains(out, `"admin":"`+f.rootID+`"`) || !strings.Contains(out, `"target":"@carol:`+serverName+`"`) {
			t.Fatalf("no admin action line with admin and target:\n%s", out)
		}
		for name, secret := range map[string]string{
			"reset password": newPW, "created password": createPW, "registered password": regPW,
			"MAC": mac, "root's token": f.root, "registered token": reg.str("access_token"),
		} {
			if strings.Contains(out, secret) {
				t.Errorf("the log holds the %s", name)
			}
		}
	})
}

// A password an admin sets waits for a hashing slot as long as it takes,
// where a login is shed past the queue's bound: an import script's
// requests are served, not refused.
func TestAdmin_PasswordQueuesForHashSlot(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		f := newAdminFixture(t, st, func(d *api.Deps) {
			d.HashConcurrency = 1
			d.HashQueueTimeout = 20 * time.Millisecond
		})
		h := f.h
		srv, holder, free := holdHashSlot(t, h, pwLogin("bob", "bob password"))
		admin := make(chan int, 1)
		go func() {
			req, _ := http.NewRequest("POST", srv.URL+"/_synapse/admin/v1/reset_password/"+f.encBob,
				strings.NewReader(`{"new_password":"queued password","logout_devices":false}`))
			req.Header.Set("Authorization", "Bearer "+f.root)
			s, _ := send(req)
			admin <- s
		}()
		// Logins meanwhile are shed (at once, or after twice the 20 ms
		// bound, as their expected wait says); the admin's request, sent
		// before them, is still waiting.
		for range 3 {
			if s, _ := post(srv.URL+"/_matrix/client/v3/login", pwLogin("root", "root password")); s != 429 {
				t.Fatalf("a login while the slot is held got %d, want 429", s)
			}
		}
		select {
		case s := <-admin:
			t.Fatalf("the admin's password change answered %d while the slot was held, want it queued", s)
		default:
		}
		free()
		if s := <-holder; s != 200 {
			t.Fatalf("the login holding the slot got %d", s)
		}
		if s := <-admin; s != 200 {
			t.Fatalf("the queued admin password change got %d, want 200", s)
		}
		h.login(pwLogin("bob", "queued password"))
	})
}
