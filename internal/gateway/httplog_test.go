package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRequestLog checks the request line: a request ID (the proxy's when usable), no query
// string, no cookies, and X-Request-Id on Latchkey's own pages only.
func TestRequestLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(WithRequestID(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "inside")
		if r.URL.Path == "/.latchkey/boom" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	h := RequestLog(log, inner)
	cases := []struct {
		name      string
		path      string
		reqID     string
		wantID    string // "" = any generated ID
		wantHdr   bool
		wantLevel string
	}{
		{"page with proxy id", "/.latchkey/login?rd=https%3A%2F%2Fa.example.com%2F&token=s3cret", "f00d-1234", "f00d-1234", true, "DEBUG"},
		{"page with forged id", "/.latchkey/login", "x\n{\"level\":\"ERROR\"}", "", true, "DEBUG"},
		{"forward auth stays bare", "/.latchkey/auth/forward?token=s3cret", "", "", false, "DEBUG"},
		{"upstream traffic stays bare", "/dashboard?api_key=s3cret", "abc", "abc", false, "DEBUG"},
		{"server error is a warning", "/.latchkey/boom", "", "", true, "WARN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			buf.Reset()
			req := httptest.NewRequest(http.MethodGet, "http://localhost"+c.path, nil)
			req.Header.Set("Cookie", "latchkey_session=s3cret")
			req.Header.Set("Authorization", "Bearer s3cret")
			if c.reqID != "" {
				req.Header.Set("X-Request-Id", c.reqID)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if strings.Contains(buf.String(), "s3cret") {
				t.Errorf("a secret from the query, cookie or Authorization header was logged:\n%s", buf.String())
			}
			var lines []map[string]any
			for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("log line %q: %v", l, err)
				}
				lines = append(lines, m)
			}
			if len(lines) != 2 {
				t.Fatalf("want 2 log lines (inside, request), got %d:\n%s", len(lines), buf.String())
			}
			reqLine := lines[1]
			id, _ := reqLine["request_id"].(string)
			if !validRequestID(id) || (c.wantID != "" && id != c.wantID) {
				t.Errorf("request_id = %q, want %q", id, c.wantID)
			}
			if reqLine["level"] != c.wantLevel {
				t.Errorf("level = %v, want %s", reqLine["level"], c.wantLevel)
			}
			if got := rec.Header().Get("X-Request-Id"); (got != "") != c.wantHdr || (got != "" && got != id) {
				t.Errorf("X-Request-Id response header = %q, want present=%v and equal to %q", got, c.wantHdr, id)
			}
			// On Latchkey's own pages the handler's own lines carry the same ID.
			if c.wantHdr && lines[0]["request_id"] != id {
				t.Errorf("the handler's log line has request_id %v, want %q", lines[0]["request_id"], id)
			}
		})
	}
}

// BenchmarkRequestLogHotPath measures what the request log adds to a forward-auth check when
// debug logging is off (the default).
func BenchmarkRequestLogHotPath(b *testing.B) {
	log := slog.New(WithRequestID(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})))
	h := RequestLog(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	req := httptest.NewRequest(http.MethodGet, "http://localhost/.latchkey/auth/forward", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}
