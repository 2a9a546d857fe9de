package worker_test

import (
	"os"
	"testing"
	"time"

	"github.com/dcsjobs/dcsjobs/audit"
)

func TestMain(m *testing.M) {
	audit.MinEvery = time.Second // audits every few seconds in these tests
	os.Exit(m.Run())
}
