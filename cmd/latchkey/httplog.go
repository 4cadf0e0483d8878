package main

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// requestLog logs one line per request at debug level (info for errors), with a request ID and
// without the query string, which can hold tokens. Forward-auth checks are counted by metrics,
// not logged at info, so that a flood of unauthenticated checks leaves no trace in the log.
func requestLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &loggingWriter{ResponseWriter: w}
		next.ServeHTTP(rw, r)
		level := slog.LevelDebug
		if rw.status >= 500 {
			level = slog.LevelWarn
		}
		if !log.Enabled(r.Context(), level) {
			return
		}
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 || strings.ContainsAny(id, " \t\r\n") {
			var b [8]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		status := rw.status
		if status == 0 {
			status = http.StatusOK
		}
		log.Log(r.Context(), level, "request", "request_id", id, "method", r.Method, "host", r.Host,
			"path", r.URL.Path, "status", status, "bytes", rw.bytes, "duration", time.Since(start), "remote", r.RemoteAddr)
	})
}

type loggingWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (l *loggingWriter) WriteHeader(code int) {
	if l.status == 0 {
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

func (l *loggingWriter) Unwrap() http.ResponseWriter { return l.ResponseWriter }
