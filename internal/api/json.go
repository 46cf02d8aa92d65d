package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"unicode/utf8"
)

// maxBodyBytes bounds every request body authd reads.
const maxBodyBytes = 64 << 10

// writeJSON sends v as the JSON body of a response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own wire types are marshalled; this cannot happen.
		status, b = http.StatusInternalServerError, []byte(`{"errcode":"M_UNKNOWN","error":"Internal server error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	// Every answer is for one client alone, and login and refresh carry
	// tokens, which no cache may keep (RFC 6749 §5.1).
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

// jsonObject is a decoded request body: the top-level keys of a JSON
// object, each still raw. Keys match exactly (encoding/json's struct
// decoding would also match "TYPE" for "type"); unknown keys are ignored,
// since clients send extras.
type jsonObject map[string]json.RawMessage

// readJSONObject reads a request body that must be one JSON object. An
// empty body reads as {} when emptyOK. Errors are Matrix errors: M_TOO_LARGE
// past maxBodyBytes, M_NOT_JSON for bytes that are not JSON (or not UTF-8),
// M_BAD_JSON for JSON that is not an object.
func readJSONObject(w http.ResponseWriter, r *http.Request, emptyOK bool) (jsonObject, error) {
	b, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 && emptyOK {
		return jsonObject{}, nil
	}
	return parseJSONObject(b)
}

// readOptionalJSONObject reads a body that may be empty, the JSON null, or
// one JSON object; the first two read as {}. Errors are readJSONObject's.
func readOptionalJSONObject(w http.ResponseWriter, r *http.Request) (jsonObject, error) {
	b, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	if t := bytes.TrimSpace(b); len(t) == 0 || string(t) == "null" {
		return jsonObject{}, nil
	}
	return parseJSONObject(b)
}

// readBody reads a request body of at most maxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errTooLarge
		}
		return nil, err
	}
	return b, nil
}

// parseJSONObject decodes b, which must be one JSON object.
func parseJSONObject(b []byte) (jsonObject, error) {
	if !utf8.Valid(b) || !json.Valid(b) {
		return nil, errNotJSON
	}
	var obj jsonObject
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		// Valid JSON that does not decode into a map is not an object
		// (null decodes into a nil map).
		return nil, errNotObject
	}
	return obj, nil
}

// present reports whether key is set to something other than null.
func (o jsonObject) present(key string) bool {
	v, ok := o[key]
	return ok && string(v) != "null"
}

// str returns the string at key. ok is false when the key is absent or
// null; err is non-nil when it holds something other than a string.
func (o jsonObject) str(key string) (s string, ok bool, err error) {
	if !o.present(key) {
		return "", false, nil
	}
	if err := json.Unmarshal(o[key], &s); err != nil {
		return "", false, err
	}
	return s, true, nil
}

// object returns the JSON object at key, with the same conventions as str.
func (o jsonObject) object(key string) (obj jsonObject, ok bool, err error) {
	if !o.present(key) {
		return nil, false, nil
	}
	if err := json.Unmarshal(o[key], &obj); err != nil || obj == nil {
		return nil, false, errors.New("not an object")
	}
	return obj, true, nil
}

// boolean returns the JSON boolean at key, with the same conventions as str.
func (o jsonObject) boolean(key string) (b bool, ok bool, err error) {
	if !o.present(key) {
		return false, false, nil
	}
	if err := json.Unmarshal(o[key], &b); err != nil {
		return false, false, err
	}
	return b, true, nil
}
