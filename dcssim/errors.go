package dcssim

import "net/http"

// resp is what a handler answers; ServeHTTP encodes it, records it and
// applies body faults.
type resp struct {
	status int
	body   any
	header http.Header
}

// dcsError is the DCS v2 error body.
type dcsError struct {
	Code   string  `json:"error_code"`
	Msg    string  `json:"error_msg"`
	ExtMsg *string `json:"error_ext_msg"`
}

// gwError is the API gateway's own error body; request_id is filled in by
// ServeHTTP.
type gwError struct {
	Code      string `json:"error_code"`
	Msg       string `json:"error_msg"`
	RequestID string `json:"request_id"`
}

// iamError is the IAM service's error body.
type iamError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Title   string `json:"title"`
	} `json:"error"`
}

func dcsErr(status int, code, msg string) resp {
	return resp{status: status, body: dcsError{Code: code, Msg: msg}}
}

func gwErr(status int, code, msg string) resp {
	return resp{status: status, body: &gwError{Code: code, Msg: msg}}
}

func iamErr(status int, code, msg string) resp {
	var e iamError
	e.Error.Code, e.Error.Message, e.Error.Title = code, msg, http.StatusText(status)
	return resp{status: status, body: e}
}

// DCS error codes and messages used by the simulator (OTC-DCS error_codes.rst
// wording, condensed where the table has placeholders).
var (
	errProjectMismatch = func() resp { return dcsErr(401, "DCS.1004", "Project ID does not match the token.") }
	errBadInstanceID   = func() resp { return dcsErr(400, "DCS.4061", "Invalid instance ID format.") }
	errNoInstance      = func() resp { return dcsErr(404, "DCS.3022", "This DCS instance does not exist.") }
	errEmptyBody       = func() resp { return dcsErr(400, "DCS.4004", "Empty request body.") }
	errNotJSON         = func() resp {
		return dcsErr(400, "DCS.4005", "Invalid request body. The body contains invalid characters or is not in JSON format.")
	}
	errBadParam    = func(name string) resp { return dcsErr(400, "DCS.4062", "Invalid "+name+" parameter in the request.") }
	errBadNode     = func() resp { return dcsErr(400, "DCS.3053", "Incorrect node ID.") }
	errNoClientMgt = func() resp { return dcsErr(400, "DCS.4848", "Client Management is not supported.") }
	errNotRunning  = func() resp { return dcsErr(400, "DCS.4049", "The instance status is not running.") }
	errWrongNode   = func() resp { return dcsErr(400, "DCS.4027", "This operation is not supported on this node.") }
	errJobBusy     = func() resp {
		return dcsErr(400, "DCS.4957", "This operation is not allowed when the task is in the current state.")
	}
	errBadJobID = func() resp { return dcsErr(400, "DCS.4070", "Invalid task ID format.") }
	errNoJob    = func() resp { return dcsErr(404, "DCS.5101", "The job does not exist.") }
	errInternal = func() resp { return dcsErr(500, "DCS.5000", "Internal service error.") }

	errNoAPI = func() resp {
		return gwErr(404, "APIGW.0101", "The API does not exist or has not been published in the environment")
	}
	errAuth = func(detail string) resp {
		return gwErr(401, "APIGW.0301", "Incorrect IAM authentication information: "+detail)
	}
	errTokenExpired = func() resp { return gwErr(401, "APIGW.0307", "The token must be updated.") }
	errBadGateway   = func() resp { return gwErr(502, "APIGW.0202", "Backend unavailable") }
	errUnavailable  = func() resp { return gwErr(503, "APIGW.0201", "Backend service unavailable") }
	errTooLarge     = func() resp { return gwErr(413, "APIGW.0201", "Request entity too large") }
)
