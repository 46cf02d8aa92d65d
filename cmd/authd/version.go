package main

import "runtime/debug"

// version is authd's version as the build recorded it: the module version
// of a tagged build, else "dev-" and the commit it was built from, else
// "dev". The admin API's server_version reports it.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "dev-" + s.Value[:12]
		}
	}
	return "dev"
}
