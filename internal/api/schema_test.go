package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	valerrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/responses"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3high "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// specDir holds the Matrix spec's OpenAPI definitions of the endpoints authd
// serves, copied unchanged from matrix-org/matrix-spec tag v1.19 (see
// testdata/matrix-spec/README.md). Every JSON response the tests see is
// checked against them by the do helper.
const specDir = "testdata/matrix-spec/v1.19"

// specFiles are the vendored API definitions, one per endpoint group. Each
// is a standalone OpenAPI 3.1 document whose paths hang off the basePath of
// its server (/_matrix/client/v3, or /_matrix/client for versions).
var specFiles = []string{"login.yaml", "logout.yaml", "whoami.yaml", "versions.yaml", "refresh.yaml", "device_management.yaml", "password_management.yaml", "account_deactivation.yaml", "administrative_contact.yaml", "login_token.yaml", "admin.yaml"}

// notMatrix are authd's operations endpoints: they answer outside the
// Matrix API and their bodies are not Matrix errors.
var notMatrix = map[string]bool{"/healthz": true, "/readyz": true}

// unmodelled are the Matrix paths authd serves whose success response no
// v1.19 definition describes: the r0.2.0 seed's /tokenrefresh, removed from
// the spec in r0.3.0 (P-2 in docs/conformance.md). Their errors are still checked against
// the generic error schema.
var unmodelled = map[string]bool{"/_matrix/client/r0/tokenrefresh": true}

// notMatrixSuccess are authd's endpoints outside the Matrix API whose
// successes no Matrix definition describes: the proxy's forward-auth check
// (an empty object and two headers) and the Prometheus exposition. Their
// errors are Matrix errors, checked as such.
var notMatrixSuccess = map[string]bool{"/_authd/verify": true, "/metrics": true}

// synapseAdminPrefix is Synapse's admin API, which no Matrix definition
// describes: its successes are checked by the admin tests themselves, its
// errors as Matrix errors.
const synapseAdminPrefix = "/_synapse/admin/"

// specDoc is one vendored API definition.
type specDoc struct {
	file      string
	doc       libopenapi.Document
	basePath  string
	model     *v3high.Document
	responses responses.ResponseBodyValidator
}

// specValidator checks responses against the vendored definitions.
type specValidator struct {
	docs []specDoc
	// errorSchema and rateLimitedSchema are definitions/errors/error.yaml
	// and rate_limited.yaml, for Matrix errors the definitions do not list
	// (401 on logout, 404 and 405 M_UNRECOGNIZED, 413 ...).
	errorSchema, rateLimitedSchema *base.Schema
	schemas                        schema_validation.SchemaValidator
}

// validatorOptions assert the standard formats (base_url must be a uri) and
// ignore the spec's own, which JSON Schema does not define: mx-user-id and
// mx-server-name. The spec pairs them with a pattern where it matters
// (user_id: "^@"), and that is asserted.
func validatorOptions() []config.Option {
	opts := []config.Option{config.WithFormatAssertions()}
	for _, f := range []string{"mx-user-id", "mx-server-name"} {
		opts = append(opts, config.WithCustomFormat(f, func(any) error { return nil }))
	}
	return opts
}

// loadSpec parses the vendored definitions once per test binary. References
// between files ($ref: definitions/errors/error.yaml) resolve inside specDir
// only: nothing is fetched and nothing outside the package is read.
var loadSpec = sync.OnceValues(func() (*specValidator, error) {
	dir, err := filepath.Abs(specDir)
	if err != nil {
		return nil, err
	}
	open := func(name string, spec []byte) (libopenapi.Document, *v3high.Document, error) {
		doc, err := libopenapi.NewDocumentWithConfiguration(spec, &datamodel.DocumentConfiguration{
			BasePath:            dir,
			SpecFilePath:        name,
			AllowFileReferences: true,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		m, err := doc.BuildV3Model()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		return doc, &m.Model, nil
	}

	v := &specValidator{schemas: schema_validation.NewSchemaValidator(validatorOptions()...)}
	for _, name := range specFiles {
		spec, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		doc, m, err := open(name, spec)
		if err != nil {
			return nil, err
		}
		if len(m.Servers) == 0 || m.Servers[0].Variables.GetOrZero("basePath") == nil {
			return nil, fmt.Errorf("%s: no basePath server variable", name)
		}
		v.docs = append(v.docs, specDoc{
			file:      name,
			doc:       doc,
			basePath:  m.Servers[0].Variables.GetOrZero("basePath").Default,
			model:     m,
			responses: responses.NewResponseBodyValidator(m, validatorOptions()...),
		})
	}

	// A two-schema document gives the error definitions to the same
	// library, resolved from the same directory.
	errorsDoc := []byte(`openapi: 3.1.0
info: {title: Matrix errors, version: "1.19"}
paths: {}
components:
  schemas:
    error: {$ref: definitions/errors/error.yaml}
    rate_limited: {$ref: definitions/errors/rate_limited.yaml}
`)
	_, m, err := open("errors.yaml (in memory)", errorsDoc)
	if err != nil {
		return nil, err
	}
	for name, dst := range map[string]**base.Schema{"error": &v.errorSchema, "rate_limited": &v.rateLimitedSchema} {
		proxy := m.Components.Schemas.GetOrZero(name)
		if proxy == nil {
			return nil, fmt.Errorf("definitions/errors: no schema %s", name)
		}
		if proxy.Schema() == nil {
			return nil, fmt.Errorf("definitions/errors: schema %s did not resolve: %v", name, proxy.GetBuildError())
		}
		*dst = proxy.Schema()
	}
	return v, nil
})

// specFor returns the spec's path for an authd request path: r0 is v3 (spec
// v1.1 re-versioned r0 as v3) and /refresh is also served under v1, as
// Synapse before 1.72 served it.
func specFor(path string) string {
	if rest, ok := strings.CutPrefix(path, "/_matrix/client/r0/"); ok {
		return "/_matrix/client/v3/" + rest
	}
	if path == "/_matrix/client/v1/refresh" {
		return "/_matrix/client/v3/refresh"
	}
	return path
}

// operation finds the definition and path item documenting method on path.
func (v *specValidator) operation(method, path string) (*specDoc, *v3high.PathItem, string) {
	path = specFor(path)
	for i := range v.docs {
		d := &v.docs[i]
		rest, ok := strings.CutPrefix(path, d.basePath)
		if !ok || d.model.Paths == nil {
			continue
		}
		for template, item := range d.model.Paths.PathItems.FromOldest() {
			if !matchesTemplate(template, rest) || item.GetOperations().GetOrZero(strings.ToLower(method)) == nil {
				continue
			}
			return d, item, template
		}
	}
	return nil, nil, ""
}

// matchesTemplate reports whether an escaped request path matches a spec
// path whose {name} segments stand for one path segment each (%2F inside a
// segment stays in it).
func matchesTemplate(template, path string) bool {
	ts, ps := strings.Split(template, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i, t := range ts {
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
			if ps[i] == "" {
				return false
			}
			continue
		}
		if t != ps[i] {
			return false
		}
	}
	return true
}

// documents reports whether op lists status, as the library matches it:
// the code itself, its range (4XX) or default.
func documents(op *v3high.Operation, status int) bool {
	if op.Responses == nil {
		return false
	}
	if op.Responses.Default != nil {
		return true
	}
	code := strconv.Itoa(status)
	return op.Responses.Codes != nil &&
		(op.Responses.Codes.GetOrZero(code) != nil || op.Responses.Codes.GetOrZero(code[:1]+"XX") != nil)
}

// validate checks one response to req. A response its operation documents
// is validated against that operation's schema; any other Matrix error
// against the generic error schema (rate_limited.yaml for a 429); an OPTIONS
// preflight must have no body. A success no vendored definition documents is
// itself a failure: vendor its definition (or list it in unmodelled).
func (v *specValidator) validate(req *http.Request, res *http.Response) error {
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	path := req.URL.Path
	switch {
	case notMatrix[path]:
		return nil
	case req.Method == http.MethodOptions:
		// Spec, Web Browser Clients: no endpoint logic runs for OPTIONS.
		if res.StatusCode != http.StatusNoContent || len(body) != 0 {
			return fmt.Errorf("OPTIONS answered %d %q, want 204 and no body", res.StatusCode, body)
		}
		return nil
	}

	doc, item, specPath := v.operation(req.Method, req.URL.EscapedPath())
	switch {
	case doc != nil && documents(item.GetOperations().GetOrZero(strings.ToLower(req.Method)), res.StatusCode) && !tokenErrorOfUIA(res.StatusCode, body):
		// The library reports against the spec's path, not authd's.
		r := req.Clone(req.Context())
		r.URL.Path, r.URL.RawPath = specPath, ""
		if ok, errs := doc.responses.ValidateResponseBodyWithPathItem(r, res, item, specPath); !ok {
			return fmt.Errorf("%s %s %s: %w", doc.file, req.Method, specPath, joinValidation(errs))
		}
	case res.StatusCode >= 400:
		schema, name := v.errorSchema, "definitions/errors/error.yaml"
		if res.StatusCode == http.StatusTooManyRequests {
			schema, name = v.rateLimitedSchema, "definitions/errors/rate_limited.yaml"
		}
		if ok, errs := v.schemas.ValidateSchemaBytes(schema, body); !ok {
			return fmt.Errorf("%s: %w", name, joinValidation(errs))
		}
	case !unmodelled[path] && !notMatrixSuccess[path] && !strings.HasPrefix(path, synapseAdminPrefix):
		return fmt.Errorf("no definition in %s documents %s %s answering %d: vendor it", specDir, req.Method, path, res.StatusCode)
	}

	if res.StatusCode >= 400 {
		// error.yaml requires only errcode, but the prose (Standard error
		// response) says "The keys error and errcode MUST always be
		// present" (T-3).
		// A User-Interactive Authentication challenge (auth_response.yaml)
		// is a 401 that is no error: flows and no errcode. A failed
		// attempt's challenge carries errcode, and then error too.
		var e struct {
			Error   *string         `json:"error"`
			Errcode *string         `json:"errcode"`
			Flows   json.RawMessage `json:"flows"`
		}
		uiaChallenge := res.StatusCode == http.StatusUnauthorized && json.Unmarshal(body, &e) == nil && e.Flows != nil && e.Errcode == nil
		if !uiaChallenge && (json.Unmarshal(body, &e) != nil || e.Error == nil) {
			return fmt.Errorf("Matrix error without a string \"error\" (spec, Standard error response): %s", body)
		}
	}
	return nil
}

// tokenErrorOfUIA reports whether a 401 is the access-token error every
// authenticated endpoint answers (M_MISSING_TOKEN, M_UNKNOWN_TOKEN: spec,
// Using access tokens) rather than the User-Interactive Authentication
// challenge a UIA endpoint's definition documents for 401: an errcode and
// no flows. It is checked against error.yaml instead.
func tokenErrorOfUIA(status int, body []byte) bool {
	var e struct {
		Errcode *string         `json:"errcode"`
		Flows   json.RawMessage `json:"flows"`
	}
	return status == http.StatusUnauthorized && json.Unmarshal(body, &e) == nil && e.Errcode != nil && e.Flows == nil
}

// joinValidation turns the library's findings into one error naming each
// failing field.
func joinValidation(errs []*valerrors.ValidationError) error {
	var all []error
	for _, e := range errs {
		msg := e.Message
		if e.Reason != "" {
			msg += ": " + e.Reason
		}
		for _, f := range e.SchemaValidationErrors {
			msg += "; " + f.Error()
		}
		all = append(all, errors.New(msg))
	}
	if len(all) == 0 {
		return errors.New("invalid (no detail from the validator)")
	}
	return errors.Join(all...)
}

// checkSpec validates a response the tests saw, failing the test with the
// validator's message.
func checkSpec(tb testing.TB, req *http.Request, res *http.Response) {
	tb.Helper()
	v, err := loadSpec()
	if err != nil {
		tb.Fatalf("load %s: %v", specDir, err)
	}
	if err := v.validate(req, res); err != nil {
		tb.Fatalf("%s %s: response %d does not match the Matrix v1.19 schema: %v", req.Method, req.URL.Path, res.StatusCode, err)
	}
}

// The validator must be able to fail: each of these responses breaks the
// schema of the operation (or the fallback) it is checked against.
func TestSpec_RejectsWrongResponses(t *testing.T) {
	v, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		method, path string
		status       int
		body         string
		wantInError  string // a word of the validator's message
	}{
		{"LoginWithoutUserID", "POST", "/_matrix/client/v3/login", 200, `{"access_token":"syt_a","device_id":"D"}`, "user_id"},
		{"LoginTokenNotString", "POST", "/_matrix/client/v3/login", 200, `{"user_id":"@a:example.org","access_token":42,"device_id":"D"}`, "access_token"},
		{"LoginUserIDNotMXID", "POST", "/_matrix/client/r0/login", 200, `{"user_id":"alice","access_token":"syt_a","device_id":"D"}`, "user_id"},
		{"LoginWellKnownNoBaseURL", "POST", "/_matrix/client/v3/login", 200, `{"user_id":"@a:example.org","access_token":"syt_a","device_id":"D","well_known":{"m.homeserver":{}}}`, "base_url"},
		{"LoginBaseURLNotURI", "POST", "/_matrix/client/v3/login", 200, `{"user_id":"@a:example.org","access_token":"syt_a","device_id":"D","well_known":{"m.homeserver":{"base_url":"matrix.example.org"}}}`, "base_url"},
		{"LoginExpiresNotInteger", "POST", "/_matrix/client/v3/login", 200, `{"user_id":"@a:example.org","access_token":"syt_a","device_id":"D","expires_in_ms":1.5}`, "expires_in_ms"},
		{"FlowWithoutType", "GET", "/_matrix/client/v3/login", 200, `{"flows":[{"kind":"m.login.password"}]}`, "type"},
		{"LoginErrorWithoutErrcode", "POST", "/_matrix/client/v3/login", 403, `{"error":"Invalid username or password"}`, "errcode"},
		{"RateLimitRetryNotInteger", "POST", "/_matrix/client/v3/login", 429, `{"errcode":"M_LIMIT_EXCEEDED","error":"x","retry_after_ms":"5000"}`, "retry_after_ms"},
		{"WhoamiIsGuestNotBool", "GET", "/_matrix/client/r0/account/whoami", 200, `{"user_id":"@a:example.org","device_id":"D","is_guest":"no"}`, "is_guest"},
		{"VersionsNotArray", "GET", "/_matrix/client/versions", 200, `{"versions":"v1.19"}`, "versions"},
		{"RefreshWithoutAccessToken", "POST", "/_matrix/client/v1/refresh", 200, `{"refresh_token":"r"}`, "access_token"},
		// Statuses the definitions do not list fall back to error.yaml.
		{"ErrorWithoutMessage", "GET", "/_matrix/client/v3/account/whoami", 401, `{"errcode":"M_UNKNOWN_TOKEN"}`, "error"},
		{"ErrorMessageNotString", "GET", "/", 404, `{"errcode":"M_UNRECOGNIZED","error":404}`, "error"},
		{"LogoutUnauthorizedWithoutErrcode", "POST", "/_matrix/client/v3/logout", 401, `{"error":"Missing access token."}`, "errcode"},
		{"UnrecognizedErrcodeNotString", "GET", "/_matrix/client/v3/nope", 404, `{"errcode":404,"error":"Unrecognized request"}`, "errcode"},
		{"UndocumentedRateLimit", "POST", "/_matrix/client/v3/logout/all", 429, `{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":true}`, "retry_after_ms"},
		{"OptionsWithBody", "OPTIONS", "/_matrix/client/v3/login", 204, `{}`, "no body"},
		{"UndocumentedSuccess", "GET", "/_matrix/client/v3/sync", 200, `{"next_batch":"s1"}`, "vendor it"},
		// Forward auth is exempt for its success only.
		{"VerifyErrorWithoutErrcode", "GET", "/_authd/verify", 401, `{"error":"Missing access token."}`, "errcode"},
		{"VerifyErrorWithoutMessage", "GET", "/_authd/verify", 503, `{"errcode":"M_UNKNOWN"}`, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			res := &http.Response{
				StatusCode: tt.status,
				Header:     http.Header{"Content-Type": {"application/json"}},
				Body:       io.NopCloser(strings.NewReader(tt.body)),
				Request:    req,
			}
			err := v.validate(req, res)
			if err == nil {
				t.Fatalf("%d %s passed validation", tt.status, tt.body)
			}
			if !strings.Contains(err.Error(), tt.wantInError) {
				t.Fatalf("error does not name %q: %v", tt.wantInError, err)
			}
			t.Logf("%v", err)
		})
	}
}

// The vendored definitions themselves must be valid OpenAPI, and every
// Matrix route authd serves must find its operation, or the checks above
// could pass vacuously.
func TestSpec_Documents(t *testing.T) {
	v, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range v.docs {
		val, errs := validator.NewValidator(d.doc)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", d.file, errs)
		}
		if ok, errs := val.ValidateDocument(); !ok {
			t.Fatalf("%s is not valid OpenAPI 3.1: %v", d.file, joinValidation(errs))
		}
	}
	routes := []struct{ method, path, wantFile, wantPath string }{
		{"GET", "/_matrix/client/v3/login", "login.yaml", "/login"},
		{"POST", "/_matrix/client/r0/login", "login.yaml", "/login"},
		{"POST", "/_matrix/client/v3/logout", "logout.yaml", "/logout"},
		{"POST", "/_matrix/client/r0/logout/all", "logout.yaml", "/logout/all"},
		{"GET", "/_matrix/client/r0/account/whoami", "whoami.yaml", "/account/whoami"},
		{"POST", "/_matrix/client/v1/refresh", "refresh.yaml", "/refresh"},
		{"POST", "/_matrix/client/r0/refresh", "refresh.yaml", "/refresh"},
		{"GET", "/_matrix/client/versions", "versions.yaml", "/versions"},
		{"GET", "/_matrix/client/v3/devices", "device_management.yaml", "/devices"},
		{"PUT", "/_matrix/client/r0/devices/PHONE", "device_management.yaml", "/devices/{deviceId}"},
		{"GET", "/_matrix/client/v3/devices/A%2FB", "device_management.yaml", "/devices/{deviceId}"},
	}
	for _, r := range routes {
		doc, _, path := v.operation(r.method, r.path)
		if doc == nil || doc.file != r.wantFile || path != r.wantPath {
			t.Errorf("%s %s: no operation %s in %s", r.method, r.path, r.wantPath, r.wantFile)
		}
	}
	for _, path := range []string{"/_matrix/client/v3/logout", "/_matrix/client/v3/devices/A/B", "/_matrix/client/v3/devices/"} {
		if doc, _, _ := v.operation("GET", path); doc != nil {
			t.Errorf("GET %s found an operation in %s", path, doc.file)
		}
	}
}
