package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// TestBackupRestoresSignIn takes `latchkey backup FILE` from a running server, starts a fresh app
// whose data_dir holds only that file, and signs the same user in with the same passkey.
func TestBackupRestoresSignIn(t *testing.T) {
	rule := "access_control:\n  rules:\n    - hosts: [app.example.test]\n      policy: passkey\n"
	first := startOpsApp(t, t.TempDir(), rule)
	pk := lktest.NewPasskey()
	first.remote.Client().Enrol(pk, first.addUser("alice"))

	backup := filepath.Join(t.TempDir(), "latchkey-backup.db")
	out, errOut, code := first.cli("backup", backup)
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, backup) {
		t.Errorf("backup printed %q, want it to name %s", out, backup)
	}
	fi, err := os.Stat(backup)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600: it holds every credential and session", fi.Mode().Perm())
	}
	if _, errOut, code := first.cli("backup", backup); code == 0 {
		t.Errorf("a second backup over the same file succeeded; it must refuse to overwrite (stderr %q)", errOut)
	}

	// A fresh server: new data_dir (so new session keys), the backup as its database.
	dir := t.TempDir()
	raw, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "latchkey.db"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	restored := startOpsApp(t, dir, rule)
	browser := restored.remote.Client()
	browser.Login(pk, "")
	r := browser.Forward("app.example.test", "/", nil)
	if r.StatusCode != http.StatusOK || r.Header.Get("Remote-User") != "alice" {
		t.Fatalf("after restore: forward auth %d Remote-User=%q, want 200 alice", r.StatusCode, r.Header.Get("Remote-User"))
	}
	out, _, code = restored.cli("user", "list")
	if code != 0 || !strings.Contains(out, "alice") {
		t.Errorf("user list on the restored database: exit %d\n%s", code, out)
	}
}
