package main

import (
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise the module
// version from the build info is used (a tagged `go install ...@vX.Y.Z` has one).
var version = "dev"

// versionLine is what `latchkey version` and `latchkey --version` print after "latchkey ": the
// version, the VCS revision the binary was built from (with "modified" when the work tree had
// uncommitted changes) and its commit time, then the Go version.
func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	return formatVersion(version, info, ok)
}

func formatVersion(v string, info *debug.BuildInfo, ok bool) string {
	if !ok {
		return v
	}
	if v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	var rev, when string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	var b strings.Builder
	b.WriteString(v)
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		b.WriteString(" (revision " + rev)
		if modified {
			b.WriteString(", modified")
		}
		if when != "" {
			b.WriteString(", " + when)
		}
		b.WriteString(")")
	} else {
		// Built without VCS stamping (-buildvcs=false, or outside a git checkout).
		b.WriteString(" (revision unknown)")
	}
	if info.GoVersion != "" {
		b.WriteString(" " + info.GoVersion)
	}
	return b.String()
}
