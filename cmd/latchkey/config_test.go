package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

func exampleConfig(t *testing.T) string {
	t.Helper()
	return filepath.Join(lktest.RepoDir(t), "config.example.yaml")
}

// runCLI runs one command line and returns its output and exit code.
func runCLI(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// TestConfigExamplePassesCheck: the shipped example is a valid config.
func TestConfigExamplePassesCheck(t *testing.T) {
	out, errOut, code := runCLI("config", "check", "--config", exampleConfig(t))
	if code != 0 {
		t.Fatalf("config check config.example.yaml: exit %d\n%s", code, errOut)
	}
	if strings.TrimSpace(out) != "config OK" {
		t.Errorf("stdout %q, want \"config OK\"", out)
	}
}

// exampleKeys lists the keys of a YAML config the way documentedKeys names them
// ("routes[].upstream"), and the keys that have no comment (only the first item of a list must
// explain its keys).
func exampleKeys(src []byte) (keys, uncommented []string, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	var walk func(n *yaml.Node, prefix string, explain bool)
	walk = func(n *yaml.Node, prefix string, explain bool) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix, explain)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				key := prefix + k.Value
				if !seen[key] && v.Kind != yaml.MappingNode {
					seen[key] = true
					keys = append(keys, key)
				}
				// A section's comment explains the keys inside it; a leaf needs its own.
				leaf := v.Kind != yaml.MappingNode && !(v.Kind == yaml.SequenceNode && len(v.Content) > 0 && v.Content[0].Kind == yaml.MappingNode)
				if explain && leaf && k.HeadComment == "" && k.LineComment == "" && v.LineComment == "" {
					uncommented = append(uncommented, key)
				}
				switch v.Kind {
				case yaml.MappingNode:
					walk(v, key+".", explain)
				case yaml.SequenceNode:
					for j, item := range v.Content {
						if item.Kind == yaml.MappingNode {
							// The first item's head comment sits on the item, not on its first key.
							if j == 0 && len(item.Content) > 0 && item.HeadComment != "" && item.Content[0].HeadComment == "" {
								item.Content[0].HeadComment = item.HeadComment
							}
							walk(item, key+"[].", explain && j == 0)
						}
					}
				}
			}
		}
	}
	walk(&doc, "", true)
	sort.Strings(keys)
	return keys, uncommented, nil
}

// missingKeys compares the keys the code knows with the keys a YAML example shows.
func missingKeys(code, example []string) (missing, unknown []string) {
	in := func(list []string, k string) bool {
		i := sort.SearchStrings(list, k)
		return i < len(list) && list[i] == k
	}
	for _, k := range code {
		if !in(example, k) {
			missing = append(missing, k)
		}
	}
	for _, k := range example {
		if !in(code, k) {
			unknown = append(unknown, k)
		}
	}
	return missing, unknown
}

// TestConfigExampleDocumentsEveryKey fails when a key exists in Config but not in
// config.example.yaml, so that the example never falls behind the code.
func TestConfigExampleDocumentsEveryKey(t *testing.T) {
	src, err := os.ReadFile(exampleConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	keys, uncommented, err := exampleKeys(src)
	if err != nil {
		t.Fatal(err)
	}
	code := documentedKeys()
	missing, unknown := missingKeys(code, keys)
	for _, k := range missing {
		t.Errorf("config key %s exists in the code but not in config.example.yaml: add it with its default and an example", k)
	}
	for _, k := range unknown {
		t.Errorf("config.example.yaml shows %s, which the code does not know", k)
	}
	for _, k := range uncommented {
		t.Errorf("config.example.yaml: %s has no comment explaining it", k)
	}
	// Every environment-settable key is in the list above.
	for _, k := range configKeys() {
		if i := sort.SearchStrings(code, k); i == len(code) || code[i] != k {
			t.Errorf("configKeys has %s but documentedKeys does not", k)
		}
	}

	t.Run("the check notices a missing key", func(t *testing.T) {
		// The same comparison over the example with one key cut out must name that key.
		cut := strings.Replace(string(src), "  max_header_bytes: 65536\n", "", 1)
		if cut == string(src) {
			t.Fatal("the example no longer has the line this test removes; update the test")
		}
		keys, _, err := exampleKeys([]byte(cut))
		if err != nil {
			t.Fatal(err)
		}
		missing, _ := missingKeys(code, keys)
		if !reflect.DeepEqual(missing, []string{"server.max_header_bytes"}) {
			t.Errorf("missing = %v, want [server.max_header_bytes]", missing)
		}
	})
}

// TestConfigExampleShowsDefaults: apart from the example rules, routes and session.cookies
// item (which repeats the one-domain shorthand), loading the example
// gives exactly Default(), so the values it shows are the true defaults.
func TestConfigExampleShowsDefaults(t *testing.T) {
	cfg, err := loadConfig(exampleConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.AccessControl.Rules) == 0 || len(cfg.Routes) == 0 {
		t.Fatal("the example should show a rule and a route")
	}
	r := cfg.AccessControl.Rules[0]
	if r.Policy != "bypass" || len(r.Paths) != 1 || r.MaxAge != 0 || r.DeviceBound {
		t.Errorf("first example rule decoded as %+v", r)
	}
	def := Default()
	cfg.AccessControl.Rules, def.AccessControl.Rules = nil, nil
	cfg.Routes, def.Routes = nil, nil
	if c := cfg.Session.Cookies; len(c) != 1 || c[0].Domain != def.Session.CookieDomain || c[0].PublicURL != def.Server.PublicURL {
		t.Errorf("the example's session.cookies should repeat the shorthand's defaults, got %+v", c)
	}
	cfg.Session.Cookies, def.Session.Cookies = nil, nil
	if !reflect.DeepEqual(cfg, def) {
		t.Errorf("config.example.yaml differs from Default():\nexample %+v\ndefault %+v", cfg, def)
	}
}

// TestConfigBadFiles: every testdata/*.bad.yaml makes `config check` exit 2 with a line that
// names the key given on the file's first line ("# want: KEY").
func TestConfigBadFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.bad.yaml"))
	if err != nil || len(files) < 10 {
		t.Fatalf("want at least 10 testdata/*.bad.yaml files, found %d (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".bad.yaml"), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(src), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok {
				t.Fatalf("first line must be \"# want: KEY\", got %q", first)
			}
			out, errOut, code := runCLI("config", "check", "--config", f)
			if code != 2 {
				t.Fatalf("exit %d, want 2 (stdout %q, stderr %q)", code, out, errOut)
			}
			found := false
			for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
				if strings.HasPrefix(line, want+":") || strings.HasPrefix(line, want+" ") {
					found = true
				}
				if strings.Contains(line, "decoding failed") || line == "" {
					t.Errorf("not one problem per line: %q", line)
				}
			}
			if !found {
				t.Errorf("no line names %s:\n%s", want, errOut)
			}
			if strings.Contains(errOut, "s3cret") {
				t.Errorf("a secret value was printed:\n%s", errOut)
			}
		})
	}
}

// TestConfigEnvironment: LATCHKEY_* variables override the file, lists take commas, and secrets
// can come from *_FILE variables.
func TestConfigEnvironment(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "latchkey.yaml")
	if err := os.WriteFile(path, []byte("server:\n  public_url: https://auth.example.com\nlog:\n  level: warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "smtp-password")
	if err := os.WriteFile(pw, []byte("s3cret-mail\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LATCHKEY_SERVER_PUBLIC_URL", "https://login.example.com")
	t.Setenv("LATCHKEY_SERVER_TRUSTED_PROXIES", "10.0.0.0/8,192.168.1.1")
	t.Setenv("LATCHKEY_SESSION_LIFETIME", "168h")
	t.Setenv("LATCHKEY_SMTP_HOST", "smtp.example.com")
	t.Setenv("LATCHKEY_SMTP_FROM", "latchkey@example.com")
	t.Setenv("LATCHKEY_SMTP_PASSWORD_FILE", pw)
	t.Setenv("LATCHKEY_METRICS_LISTEN", "")
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		key       string
		got, want any
	}{
		{"server.public_url", cfg.Server.PublicURL, "https://login.example.com"},
		{"server.trusted_proxies", cfg.Server.TrustedProxies, []string{"10.0.0.0/8", "192.168.1.1"}},
		{"session.lifetime", cfg.Session.Lifetime, 168 * time.Hour},
		{"log.level (file)", cfg.Log.Level, "warn"},
		{"server.listen (default)", cfg.Server.Listen, "127.0.0.1:8080"},
		{"smtp.password_file", cfg.SMTP.PasswordFile, pw},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.key, c.got, c.want)
		}
	}
	got, err := secretValue(cfg.SMTP.Password, cfg.SMTP.PasswordFile, "smtp.password")
	if err != nil || got != "s3cret-mail" {
		t.Errorf("smtp password from file = %q, %v; want the trimmed file content", got, err)
	}
}

// TestConfigDefaultsWithoutFile: no --config and no ./latchkey.yaml gives Default().
func TestConfigDefaultsWithoutFile(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("loadConfig(\"\") = %+v, want Default()", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Default() is not valid: %v", err)
	}
	if err := os.WriteFile("latchkey.yaml", []byte("log:\n  format: json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err = loadConfig(""); err != nil || cfg.Log.Format != "json" {
		t.Errorf("./latchkey.yaml was not read: format %q, %v", cfg.Log.Format, err)
	}
}

// TestSecretsRedacted: secrets never show in fmt (any verb), slog (text and JSON), JSON or
// validation errors.
func TestSecretsRedacted(t *testing.T) {
	const secret = "s3cret-value-that-must-not-leak"
	cfg := Default()
	cfg.Session.HashKey = secret
	cfg.Session.BlockKey = secret
	cfg.Storage.Postgres.DSN = "postgres://u:" + secret + "@db/latchkey"
	cfg.SMTP.Password = secret

	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s"} {
		outputs["Config "+verb] = fmt.Sprintf(verb, cfg)
		outputs["pointer "+verb] = fmt.Sprintf(verb, &cfg)
		outputs["Secret "+verb] = fmt.Sprintf(verb, cfg.SMTP.Password)
	}
	outputs["Sprint"] = fmt.Sprint(cfg.Session.HashKey, cfg)
	outputs["Errorf %v"] = fmt.Errorf("wrapping %v", cfg.Storage.Postgres.DSN).Error()
	b, _ := json.Marshal(cfg)
	outputs["json"] = string(b)
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(h(&buf))
		log.Info("config", "config", cfg, "key", cfg.Session.HashKey, "session", cfg.Session)
		log.Info("attr", slog.Any("dsn", cfg.Storage.Postgres.DSN))
		outputs[name] = buf.String()
	}
	bad := Default()
	bad.Session.HashKey = secret // not base64
	bad.Session.HashKeyFile = "/nonexistent"
	if err := bad.Validate(); err != nil {
		outputs["Validate"] = err.Error()
	} else {
		t.Error("a hash_key that is not base64, given twice, passed Validate")
	}
	for name, out := range outputs {
		if strings.Contains(out, secret) || strings.Contains(out, "s3cret") {
			t.Errorf("%s leaks the secret: %s", name, out)
		}
	}
	if !strings.Contains(outputs["Config %+v"], "HashKey:<redacted>") {
		t.Errorf("%%+v should show the field as <redacted>: %s", outputs["Config %+v"])
	}
	if string(cfg.SMTP.Password) != secret {
		t.Error("converting a Secret to string must give the value to the code that needs it")
	}
}

// TestConfigRulesDecode: every field of a rule, including max_age, device_bound and
// authenticators, decodes from YAML.
func TestConfigRulesDecode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.yaml")
	yml := `access_control:
  rules:
    - hosts: [grafana.example.com]
      paths: ["^/admin"]
      methods: [GET, POST]
      networks: [192.168.1.0/24]
      groups: [admins]
      users: [alice]
      policy: passkey
      max_age: 15m
      device_bound: true
      authenticators: [ee882879-721c-4913-9775-3dfcce97072a]
`
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := cfg.AccessControl.Rules[0]
	if r.MaxAge != 15*time.Minute || !r.DeviceBound || len(r.Authenticators) != 1 || r.Policy != "passkey" ||
		len(r.Methods) != 2 || r.Networks[0] != "192.168.1.0/24" || r.Users[0] != "alice" || r.Groups[0] != "admins" {
		t.Errorf("rule decoded as %+v", r)
	}
}
