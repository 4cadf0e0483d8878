package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
	"github.com/latchkeyhq/latchkey/store"
)

// dumpTables renders every copied table of a database, for comparing source and target.
func dumpTables(t *testing.T, db *sql.DB) string {
	t.Helper()
	var b strings.Builder
	for _, table := range copyTables {
		rows, err := db.Query("SELECT * FROM " + table.name + " ORDER BY " + table.key)
		if err != nil {
			t.Fatalf("dump %s: %v", table.name, err)
		}
		cols, _ := rows.Columns()
		fmt.Fprintf(&b, "[%s] %v\n", table.name, cols)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%v\n", vals)
		}
		rows.Close()
	}
	return b.String()
}

var countLine = regexp.MustCompile(`(?m)^(\w+)\s+(\d+)\s+(\d+)\s*$`)

// parseCounts reads migrate's report: table → [copied, new].
func parseCounts(t *testing.T, out string) map[string][2]int {
	t.Helper()
	got := map[string][2]int{}
	for _, m := range countLine.FindAllStringSubmatch(out, -1) {
		copied, _ := strconv.Atoi(m[2])
		added, _ := strconv.Atoi(m[3])
		got[m[1]] = [2]int{copied, added}
	}
	if len(got) != len(copyTables) {
		t.Fatalf("report names %d tables, want %d:\n%s", len(got), len(copyTables), out)
	}
	return got
}

func migrateCmd(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"migrate"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestMigrate(t *testing.T) {
	// A real SQLite deployment with history: enrolment, logins, a ceremony in flight, a token.
	env := lktest.New(t, lktest.Config{})
	pk := lktest.NewPasskey()
	alice, token := env.AddUser("alice", "admins")
	browser := env.Client()
	codes := browser.Enrol(pk, token)
	browser.Login(pk, "")
	env.AddUser("bob")
	env.Client().BeginLogin()
	if err := env.Store.CreateToken(context.Background(), store.Token{ID: "tok1", UserID: alice.ID, Name: "ci",
		Hash: bytes.Repeat([]byte{7}, 32), Hosts: []string{"app.example.test"}, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if len(codes) == 0 {
		t.Fatal("no recovery codes")
	}
	srcDump := dumpTables(t, env.Store.DB())

	srv := lktest.StartPostgres(t)
	dsn := srv.NewDatabase(t)
	from, to := "sqlite:"+env.DBPath, "postgres:"+dsn

	target := func() *sql.DB {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}()

	t.Run("copies_everything", func(t *testing.T) {
		code, out, errOut := migrateCmd("--from", from, "--to", to)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		counts := parseCounts(t, out)
		for table, want := range map[string]int{"users": 2, "credentials": 1, "invites": 2, "recovery_codes": len(codes),
			"ceremonies": 1, "sessions": 1, "api_tokens": 1} {
			if got := counts[table]; got[0] != want || got[1] != want {
				t.Errorf("%s: copied %d, new %d; want %d and %d", table, got[0], got[1], want, want)
			}
		}
		if counts["audit"][0] == 0 {
			t.Error("no audit rows copied")
		}
		if got := dumpTables(t, target); got != srcDump {
			t.Fatalf("target differs from source:\n%s\nsource:\n%s", got, srcDump)
		}
	})

	t.Run("second_run_adds_nothing", func(t *testing.T) {
		var revBefore int64
		target.QueryRow("SELECT n FROM revision").Scan(&revBefore)
		code, out, errOut := migrateCmd("--from", from, "--to", to)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		for table, c := range parseCounts(t, out) {
			if c[1] != 0 {
				t.Errorf("%s: %d new rows on a second run", table, c[1])
			}
		}
		if got := dumpTables(t, target); got != srcDump {
			t.Fatalf("target differs from source after a second run:\n%s", got)
		}
		var revAfter int64
		target.QueryRow("SELECT n FROM revision").Scan(&revAfter)
		if revAfter <= revBefore {
			t.Error("the target's revision did not move: running servers would not reload")
		}
	})

	t.Run("target_keeps_working", func(t *testing.T) {
		// New rows after explicit ids: the identity sequences were moved past the copied ids.
		st, err := store.OpenPostgres(context.Background(), dsn, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if _, err := st.CreateInvite(context.Background(), store.Invite{TokenHash: bytes.Repeat([]byte{9}, 32), UserID: alice.ID,
			Purpose: store.PurposeEnrol, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatalf("new invite on the target: %v", err)
		}
		if err := st.Audit(context.Background(), store.Event{Event: "after_migrate"}); err != nil {
			t.Fatalf("new audit row on the target: %v", err)
		}

		// The migrated passkey signs in on a server running on the target.
		cfg := Default()
		cfg.DataDir = t.TempDir()
		cfg.Server.Listen = "127.0.0.1:0"
		cfg.Server.PublicURL = env.Origin()
		cfg.Storage.Postgres.DSN = Secret(dsn)
		cfg.Metrics.Listen = ""
		cfg.AccessControl.Rules = []proxy.RuleConfig{{Hosts: []string{"app.example.test"}, Policy: "passkey"}}
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			done <- serve(ctx, cfg, serveOptions{out: io.Discard, errOut: io.Discard, ready: func(addr, _ string) { ready <- addr }})
		}()
		defer func() { cancel(); <-done }()
		var addr string
		select {
		case addr = <-ready:
		case err := <-done:
			t.Fatalf("serve on the target: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("serve on the target never became ready")
		}
		c := &cluster{t: t, public: env.Origin(), appHost: "app.example.test"}
		r := &replica{name: "target", base: "http://" + addr}
		b := c.browser()
		b.login(r, r, pk)
		if rep := b.mustForward(r, http.StatusOK); rep.header.Get("Remote-User") != "alice" {
			t.Fatalf("Remote-User %q", rep.header.Get("Remote-User"))
		}
	})

	t.Run("refusals", func(t *testing.T) {
		other := srv.NewDatabase(t)
		st, err := store.OpenPostgres(context.Background(), other, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// A target where a server already ran and made its own alice.
		if err := st.CreateUser(context.Background(), store.User{ID: "11111111-2222-4333-8444-555555555555", Name: "alice"}); err != nil {
			t.Fatal(err)
		}
		before := dumpTables(t, st.DB())
		for _, c := range []struct {
			name      string
			args      []string
			wantInErr string
		}{
			{"no_flags", nil, "--from and --to"},
			{"missing_source", []string{"--from", "sqlite:" + filepath.Join(t.TempDir(), "typo.db"), "--to", "postgres:" + other}, "no such file"},
			{"same_database", []string{"--from", from, "--to", from}, "same database"},
			{"bad_scheme", []string{"--from", "mysql:x", "--to", "postgres:" + other}, "sqlite:PATH or postgres:DSN"},
			{"conflicting_target", []string{"--from", from, "--to", "postgres:" + other}, "empty database"},
		} {
			t.Run(c.name, func(t *testing.T) {
				code, _, errOut := migrateCmd(c.args...)
				if code == 0 || !strings.Contains(errOut, c.wantInErr) {
					t.Fatalf("exit %d, stderr %q; want a failure mentioning %q", code, errOut, c.wantInErr)
				}
				if strings.Contains(errOut, other) {
					t.Fatalf("the DSN was printed: %s", errOut)
				}
			})
		}
		// All or nothing: the refused copy left the target as it was.
		if after := dumpTables(t, st.DB()); after != before {
			t.Fatalf("a refused migrate wrote to the target:\n%s", after)
		}
		st.Close()
	})
}
