package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startLimited runs serve() with short, configured timeouts and returns the listen address.
func startLimited(t *testing.T) (addr string, dataDir string) {
	t.Helper()
	cfg := Default()
	dataDir = filepath.Join(t.TempDir(), "data")
	cfg.DataDir = dataDir
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.PublicURL = "https://auth.example.com"
	cfg.Metrics.Listen = ""
	cfg.Log.Level = "error"
	cfg.Server.Timeouts.ReadHeader = time.Second
	cfg.Server.Timeouts.Read = 2 * time.Second
	cfg.Server.Timeouts.Idle = time.Second
	cfg.Server.MaxHeaderBytes = 16 << 10
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, serveOptions{out: io.Discard, errOut: io.Discard, ready: func(a, _ string) { ready <- a }})
	}()
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not become ready")
	}
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return addr, dataDir
}

func healthz(t *testing.T, addr string) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	r, err := c.Get("http://" + addr + "/.latchkey/healthz")
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", r.StatusCode)
	}
}

// closedWithin reports whether the server closes conn (read returns an error) within d.
func closedWithin(conn net.Conn, d time.Duration) bool {
	conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestSlowlorisAndOversizedHeaders is PUB-33, against the http.Server that serve() configures.
func TestSlowlorisAndOversizedHeaders(t *testing.T) {
	addr, dataDir := startLimited(t)

	t.Run("data_dir is 0700", func(t *testing.T) {
		fi, err := os.Stat(dataDir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("data_dir mode %o, want 700", fi.Mode().Perm())
		}
	})

	t.Run("slow header senders are cut off by ReadHeaderTimeout", func(t *testing.T) {
		var wg sync.WaitGroup
		results := make([]bool, 8)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer conn.Close()
				stop := make(chan struct{})
				go func() {
					// One header byte every 100 ms, forever.
					msg := "GET /.latchkey/healthz HTTP/1.1\r\nHost: auth.example.com\r\nX-Slow: " + strings.Repeat("a", 1000)
					for j := 0; j < len(msg); j++ {
						select {
						case <-stop:
							return
						case <-time.After(100 * time.Millisecond):
						}
						if _, err := conn.Write([]byte{msg[j]}); err != nil {
							return
						}
					}
				}()
				results[i] = closedWithin(conn, 5*time.Second)
				close(stop)
			}()
		}
		// The server keeps answering while the slow connections hang.
		time.Sleep(300 * time.Millisecond)
		healthz(t, addr)
		wg.Wait()
		for i, closed := range results {
			if !closed {
				t.Errorf("slow connection %d still open after 5 s (read_header is 1 s)", i)
			}
		}
		healthz(t, addr)
	})

	t.Run("slow body is cut off by ReadTimeout", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte("POST /.latchkey/api/login/begin HTTP/1.1\r\nHost: auth.example.com\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"))
		if !closedWithin(conn, 6*time.Second) {
			t.Error("a connection that never finishes its body is still open after 6 s (read is 2 s)")
		}
	})

	t.Run("idle keep-alive connections are closed by IdleTimeout", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte("GET /.latchkey/healthz HTTP/1.1\r\nHost: auth.example.com\r\n\r\n"))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = br.ReadByte()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Error("an idle keep-alive connection is still open after 5 s (idle is 1 s)")
		}
	})

	t.Run("oversized headers get 431", func(t *testing.T) {
		cases := map[string]string{
			"2 MiB header block":  "X-Big: " + strings.Repeat("a", 2<<20) + "\r\n",
			"100 KiB Cookie":      "Cookie: latchkey_session=" + strings.Repeat("a", 100<<10) + "\r\n",
			"10000 small headers": strings.Repeat("X-A: b\r\n", 10000),
		}
		for name, hdr := range cases {
			t.Run(name, func(t *testing.T) {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				go conn.Write([]byte("GET /.latchkey/healthz HTTP/1.1\r\nHost: auth.example.com\r\n" + hdr + "\r\n"))
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
					t.Errorf("status %d, want 431", resp.StatusCode)
				}
			})
		}
		healthz(t, addr)
	})
}
