// Package dcssim is an in-process simulator of the parts of Huawei Cloud DCS
// (Distributed Cache Service, managed Redis) that the job worker talks to:
// the session-management endpoints (ScanClients, ListClients), job polling
// (ShowJobInfo), instance and logical-node lookup, the IAM password-token
// endpoint, and the API gateway in front of them (AK/SK and token
// authentication, throttling, gateway error bodies).
//
// The wire contract is /work/shared/reference/dcs-api.md. The simulator is an
// independent implementation of that contract: apart from the AK/SK
// verification in dcsapi/signer it imports nothing from this project, so a
// client that passes against it has not merely agreed with itself.
//
// A *Server is an http.Handler; tests start it with httptest:
//
//	sim, err := dcssim.New(dcssim.Config{Seed: 1})
//	if err != nil { t.Fatal(err) }
//	ts := httptest.NewServer(sim)
//	defer ts.Close()
//	// sign requests with dcssim.DefaultAK / dcssim.DefaultSK against ts.URL,
//	// project dcssim.DefaultProjectID, instance dcssim.HAInstanceID, ...
//
// Everything that changes with time (job states, session ages, token expiry,
// signature windows, the throttling bucket) reads Config.Now, so tests can
// drive a job INIT → RUNNING → SUCCESS with a fake clock and no sleeping. Job
// progress is evaluated lazily on each request; there are no background
// goroutines.
//
// Faults (throttling, 5xx, latency, broken bodies, slow or failing jobs,
// jobs the job API does not know) are set with Config.Faults, Server.SetFaults
// or PUT /_sim/faults. The /_sim/ admin API needs no authentication and is not
// a DCS path; cmd/dcs-sim serves the simulator as a standalone program.
package dcssim
