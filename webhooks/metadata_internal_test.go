package webhooks

import (
	"bytes"
	"encoding/json"
	"testing"
)

// referenceAccountID is scanAccountID written with json.Decoder tokens:
// slower, obviously right.
func referenceAccountID(b []byte) (string, int) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return "", 0
	}
	var value string
	found := 0
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", 0
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return "", 0
		}
		if key, _ := t.(string); key == "account_id" {
			found++
			value = ""
			_ = json.Unmarshal(raw, &value)
		}
	}
	return value, found
}

// FuzzScanAccountID checks the allocation-free metadata walk against the
// tokenising reference on any JSON object; as a plain test it runs the
// seeds: nesting, escapes, whitespace, every value type.
func FuzzScanAccountID(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"account_id":"a"}`, ` { "account_id" : "a" , "b" : "c" } `,
		`{"x":{"account_id":"nested"},"account_id":"top"}`, `{"x":["account_id",{"account_id":1}],"account_id":"y"}`,
		`{"account_id":"a","account_id":"b"}`, `{"account\u005fid":"e"}`, `{"k\"account_id":"q"}`,
		`{"account_id":"a\"b\\c"}`, `{"account_id":null}`, `{"account_id":12.5e3}`, `{"account_id":true,"z":false}`,
		`{"ACCOUNT_ID":"u"}`, "{\n\t\"account_id\"\r\n:\t\"ws\"\n}", `{"a":"}","account_id":"after brace"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = bytes.TrimSpace(b)
		if !json.Valid(b) || len(b) == 0 || b[0] != '{' {
			return // UnmarshalJSON hands the walk valid objects only
		}
		gv, gn := scanAccountID(b)
		wv, wn := referenceAccountID(b)
		if gv != wv || gn != wn {
			t.Fatalf("scanAccountID(%s) = %q %d, want %q %d", b, gv, gn, wv, wn)
		}
	})
}
