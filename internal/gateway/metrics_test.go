package gateway

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// TestGrafanaDashboardMatchesMetrics keeps deploy/grafana in step with metrics.go: every
// latchkey_ series the dashboard queries exists, and every latchkey_ family is on the dashboard.
func TestGrafanaDashboardMatchesMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "latchkey-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				if s, ok := val.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(val)
			}
		case []any:
			for _, val := range x {
				walk(val)
			}
		}
	}
	walk(dash)
	if len(exprs) == 0 {
		t.Fatal("the dashboard has no queries")
	}

	m := NewMetrics("test")
	m.watchSessions(fixedSessions(0))
	m.watchView(fixedAge(0))
	m.Upstream("app.example.test", http.StatusOK, time.Millisecond) // families without labels known in advance
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, f := range fams {
		known[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_count", "_sum"} {
				known[f.GetName()+s] = true
			}
		}
	}
	used := map[string]bool{}
	ident := regexp.MustCompile(`\b(latchkey_[a-z_]+|process_[a-z_]+|go_[a-z_]+)\b`)
	for _, e := range exprs {
		for _, name := range ident.FindAllString(e, -1) {
			used[name] = true
			if !known[name] {
				t.Errorf("the dashboard queries %s, which Latchkey does not expose (expr %q)", name, e)
			}
		}
	}
	for _, f := range fams {
		name := f.GetName()
		if !strings.HasPrefix(name, "latchkey_") {
			continue
		}
		if !used[name] && !used[name+"_bucket"] && !used[name+"_count"] && !used[name+"_sum"] {
			t.Errorf("%s is not on the dashboard", name)
		}
	}
}

type fixedAge time.Duration

func (a fixedAge) ViewAge() time.Duration { return time.Duration(a) }

type fixedSessions int

func (f fixedSessions) ActiveSessions() int { return int(f) }
