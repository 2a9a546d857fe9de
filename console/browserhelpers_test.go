package console_test

import "github.com/dcsjobs/dcsjobs/console/internal/fakeclients"

var (
	cl         = fakeclients.Client
	genClients = fakeclients.Gen
)
