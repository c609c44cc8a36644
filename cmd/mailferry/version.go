package main

import "runtime/debug"

// version is set by a release build (-ldflags "-X main.version=v1.2.3");
// otherwise buildVersion asks the build info.
var version = ""

// buildVersion is the module version `go install ...@v1.2.3` recorded, or
// the VCS revision of a build from a checkout ("devel" plus the commit).
func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	switch {
	case rev == "":
		return "devel"
	case dirty:
		return "devel-" + rev + "-dirty"
	}
	return "devel-" + rev
}

// isHelp reports whether arg asks for help (so that "help help" does not
// ask itself for help forever).
func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "--help", "-help":
		return true
	}
	return false
}
