package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// requestIDKey carries the request ID in a request's context, for WithRequestID.
type requestIDKey struct{}

// requestIDs hands out request IDs: a random per-process prefix and a counter, unique across
// restarts and replicas without a random read per request.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &requestIDs{prefix: hex.EncodeToString(b[:]) + "-"}
}

// of returns the request's X-Request-Id when a proxy in front set a usable one (so that its log
// and ours can be joined), else a new ID.
func (g *requestIDs) of(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); validRequestID(id) {
		return id
	}
	return g.prefix + strconv.FormatUint(g.n.Add(1), 36)
}

// validRequestID accepts the IDs proxies generate (hex, UUIDs, Traefik/Nginx/Envoy forms) and
// nothing that could forge a log line or smuggle data into it.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// hotPath reports whether a request is an authorization check or proxied traffic: those get no
// per-request work beyond the optional debug line, so that the hot path stays allocation-light.
func hotPath(r *http.Request) bool {
	return !strings.HasPrefix(r.URL.Path, "/.latchkey/") || strings.HasPrefix(r.URL.Path, "/.latchkey/auth/")
}

// RequestLog logs one line per request with a request ID: at debug level, or warn for a 5xx.
// It never logs the query string (enrolment tokens and rd live there), cookies or any other
// header. Authorization checks stay at debug so that a flood of unauthenticated checks leaves no
// trace at info level (design: no per-request state or info log without a valid session).
//
// Requests to Latchkey's own pages and API also get the ID in their context (see WithRequestID,
// so that auth's log lines carry it) and in an X-Request-Id response header, to quote when
// reporting a problem.
func RequestLog(log *slog.Logger, next http.Handler) http.Handler {
	ids := newRequestIDs()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hot := hotPath(r)
		if hot && !log.Enabled(r.Context(), slog.LevelDebug) {
			// Nothing would be logged: no wrapper, no clock. A forward-auth check or proxied
			// request that fails on Latchkey's side logs its own warning (upstream unavailable,
			// store stale); an application's own 5xx is the application's business.
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		id := ""
		if !hot {
			id = ids.of(r)
			w.Header().Set("X-Request-Id", id)
			r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		}
		rw := &loggingWriter{ResponseWriter: w}
		next.ServeHTTP(rw, r)
		status := rw.status
		if status == 0 {
			status = http.StatusOK
		}
		level := slog.LevelDebug
		if status >= 500 {
			level = slog.LevelWarn
		}
		if !log.Enabled(r.Context(), level) {
			return
		}
		if id == "" {
			id = ids.of(r)
		}
		path := r.URL.Path
		if len(path) > 256 {
			path = path[:256] + "..."
		}
		log.LogAttrs(r.Context(), level, "request", slog.String("request_id", id), slog.String("method", r.Method),
			slog.String("host", r.Host), slog.String("path", path), slog.Int("status", status), slog.Int64("bytes", rw.bytes),
			slog.Duration("duration", time.Since(start)), slog.String("remote", r.RemoteAddr))
	})
}

// WithRequestID adds the request_id attribute to every record logged with a request's context
// (log.InfoContext(r.Context(), ...)), so that one ID ties a request's lines together.
func WithRequestID(h slog.Handler) slog.Handler { return requestIDHandler{h} }

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		rec = rec.Clone()
		rec.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, rec)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// loggingWriter records the status and size for the log line. Unwrap lets
// http.ResponseController reach Flush, Hijack (WebSockets) and deadlines underneath.
type loggingWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (l *loggingWriter) WriteHeader(code int) {
	if l.status == 0 && code >= 200 {
		l.status = code
	}
	l.ResponseWriter.WriteHeader(code)
}

func (l *loggingWriter) Write(b []byte) (int, error) {
	if l.status == 0 {
		l.status = http.StatusOK
	}
	n, err := l.ResponseWriter.Write(b)
	l.bytes += int64(n)
	return n, err
}

// Flush keeps streaming responses (server-sent events from a dashboard) flowing for callers that
// test for http.Flusher directly rather than through http.ResponseController.
func (l *loggingWriter) Flush() {
	if l.status == 0 {
		l.status = http.StatusOK
	}
	_ = http.NewResponseController(l.ResponseWriter).Flush()
}

func (l *loggingWriter) Unwrap() http.ResponseWriter { return l.ResponseWriter }
