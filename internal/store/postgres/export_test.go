package postgres

// ParseRevocation is parseRevocation, for the table test.
var ParseRevocation = parseRevocation

// SendProbesTo makes db's revocation listener send its probes to channel,
// where it never hears them: a database that accepts LISTEN and delivers
// nothing. SendProbesTo("") sends them where they belong again.
func (db *DB) SendProbesTo(channel string) {
	if channel == "" {
		channel = probeChannel
	}
	db.listener.probeTo.Store(&channel)
}
