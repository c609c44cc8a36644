package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

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

const usageVersion = `Usage: mailferry version

Prints the version (a release's tag, the module version "go install"
recorded, or "devel" and the commit of a build from a checkout), then the
Go version and platform it was built with. "mailferry --version" and
"mailferry -V" are the same.

Examples:
  mailferry version
  mailferry --version
`

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if isHelp(args[0]) {
			fmt.Fprint(stdout, usageVersion)
			return exitOK
		}
		fmt.Fprintf(stderr, "mailferry version: unexpected argument %q; see mailferry help version\n", args[0])
		return exitUsage
	}
	fmt.Fprintln(stdout, "mailferry", buildVersion())
	fmt.Fprintf(stdout, "built with %s for %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
