// Package dcsapi is a typed client for the Huawei Cloud DCS (Distributed Cache
// Service) endpoints that a session audit needs: ScanClients, ShowJobInfo,
// ListClients (with a helper that reads every page), ListInstances,
// ShowInstance and the logical-nodes endpoint.
//
// Authentication is pluggable (see [Authenticator]): AK/SK request signing
// ([AKSK], SDK-HMAC-SHA256, optionally with a security token for temporary
// credentials), a static IAM token ([Token]) or an IAM user's password
// exchanged for a token that is cached and refreshed ([IAMPassword]).
//
// Every failure from the service is an [*APIError]; [Classify] sorts any error
// into throttled, transient, auth or permanent, which is what a retrying
// caller needs:
//
//	c, err := dcsapi.New(dcsapi.Config{
//		Region:    "ap-southeast-1",
//		ProjectID: os.Getenv("HUAWEICLOUD_SDK_PROJECT_ID"),
//		Auth:      &dcsapi.AKSK{AccessKey: ak, SecretKey: dcsapi.Secret(sk)},
//	})
//	jobID, err := c.ScanClients(ctx, instanceID, nodeID, true)
//	// ... poll c.ShowJobInfo(ctx, jobID) until Status.Done() ...
//	snap, err := c.ListAllClients(ctx, instanceID, nodeID, dcsapi.ListClientsOptions{})
//
// Responses are decoded tolerantly: numbers may arrive as strings and strings
// as numbers (the service's models have changed types over time), unknown
// fields are ignored and nulls are accepted.
package dcsapi
