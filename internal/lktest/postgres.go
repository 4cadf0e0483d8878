package lktest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// PostgresDSNEnv names an environment variable holding the DSN of an existing PostgreSQL server
// (a superuser, or a role that may CREATE DATABASE). When it is set, tests use that server instead
// of starting their own.
const PostgresDSNEnv = "LATCHKEY_TEST_POSTGRES_DSN"

// PGServer is a PostgreSQL server for tests: a throwaway one in a temporary directory, or the
// one named by PostgresDSNEnv.
type PGServer struct {
	admin *url.URL // DSN of the maintenance database "postgres"
	// ctl runs pg_ctl with the given action on a server this package started (nil for one named
	// by PostgresDSNEnv), for tests that take the database away and bring it back.
	ctl func(action string) ([]byte, error)
}

// skipOrFatal skips the test with a clear reason, or fails it under CI=true, where every part of
// the suite must run.
func skipOrFatal(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// postgresBin finds a PostgreSQL server binary: on PATH, or in Debian's versioned folder
// (/usr/lib/postgresql/VERSION/bin, which is not on PATH), newest version first.
func postgresBin(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, true
		}
	}
	return "", false
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// StartPostgres returns a PostgreSQL server for the test: the one in LATCHKEY_TEST_POSTGRES_DSN, or a
// fresh server started with initdb and pg_ctl in a temporary directory on a free 127.0.0.1 port
// and stopped when the test ends. Without the server binaries (Debian package postgresql) the
// test is skipped, or fails under CI=true. initdb refuses to run as root, so as root the server
// runs as the "postgres" user.
func StartPostgres(t testing.TB) *PGServer {
	t.Helper()
	if dsn := os.Getenv(PostgresDSNEnv); dsn != "" {
		u, err := url.Parse(dsn)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			t.Fatalf("%s must be a postgres:// URL", PostgresDSNEnv)
		}
		srv := &PGServer{admin: u}
		db := srv.open(t, u.String())
		defer db.Close()
		if err := db.Ping(); err != nil {
			skipOrFatal(t, "no PostgreSQL server reachable at %s: %v", PostgresDSNEnv, err)
		}
		return srv
	}
	initdb, ok1 := postgresBin("initdb")
	pgctl, ok2 := postgresBin("pg_ctl")
	if !ok1 || !ok2 {
		skipOrFatal(t, "PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian package postgresql, or set %s", PostgresDSNEnv)
	}
	var asUser []string
	var uid, gid = -1, -1
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			skipOrFatal(t, "running as root and there is no postgres user to run initdb as (Debian package postgresql creates it): %v", err)
		}
		uid, _ = strconv.Atoi(pg.Uid)
		gid, _ = strconv.Atoi(pg.Gid)
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			skipOrFatal(t, "running as root without runuser (Debian package util-linux) to start PostgreSQL as postgres")
		}
		asUser = []string{runuser, "-u", "postgres", "--"}
	}
	// Not t.TempDir: its parents are private to root, and the server runs as postgres.
	dir, err := os.MkdirTemp("", "latchkey-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	command := func(args ...string) *exec.Cmd {
		argv := append(append([]string{}, asUser...), args...)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		return cmd
	}
	if out, err := command(initdb, "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	var port int
	started := false
	// A free port can be taken between the probe and the server's bind: try a few.
	for attempt := 0; attempt < 3 && !started; attempt++ {
		port = freePort(t)
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", port, dir)
		out, err := command(pgctl, "-D", data, "-o", opts, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "30", "start").CombinedOutput()
		if err == nil {
			started = true
			break
		}
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		if attempt == 2 {
			t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
		}
	}
	t.Cleanup(func() {
		if out, err := command(pgctl, "-D", data, "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
			t.Logf("pg_ctl stop: %v\n%s", err, out)
		}
	})
	admin := &url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path: "/postgres", RawQuery: "sslmode=disable"}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", port, dir)
	ctl := func(action string) ([]byte, error) {
		if action == "stop" {
			// Fast, not immediate: the test server runs with synchronous_commit=off, and an
			// immediate stop would lose commits that their clients saw succeed.
			return command(pgctl, "-D", data, "-m", "fast", "-w", "stop").CombinedOutput()
		}
		return command(pgctl, "-D", data, "-o", opts, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "30", "start").CombinedOutput()
	}
	return &PGServer{admin: admin, ctl: ctl}
}

// Stop stops the server at once (an outage); Start brings it back on the same port. Both skip the
// test on a server named by PostgresDSNEnv, which this package does not control.
func (p *PGServer) Stop(t testing.TB) { p.control(t, "stop") }

// Start starts a server that Stop stopped.
func (p *PGServer) Start(t testing.TB) { p.control(t, "start") }

func (p *PGServer) control(t testing.TB, action string) {
	t.Helper()
	if p.ctl == nil {
		t.Skipf("the PostgreSQL server of %s is not this test's to %s", PostgresDSNEnv, action)
	}
	if out, err := p.ctl(action); err != nil {
		t.Fatalf("pg_ctl %s: %v\n%s", action, err, out)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (p *PGServer) open(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	return db
}

// NewDatabase creates an empty database for one test and returns its DSN (a postgres:// URL). The
// database is dropped when the test ends.
func (p *PGServer) NewDatabase(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "lk_" + hex.EncodeToString(b)
	db := p.open(t, p.admin.String())
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		db := p.open(t, p.admin.String())
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u := *p.admin
	u.Path = "/" + name
	return u.String()
}

// AdminDSN is the DSN of the server's maintenance database.
func (p *PGServer) AdminDSN() string { return p.admin.String() }
