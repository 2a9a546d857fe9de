package dcsapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ClientInfo is one client session of a DCS node, with the 21 fields of the
// DCS API under their DCS names. Numbers are decoded tolerantly (see FlexInt).
type ClientInfo struct {
	ID       string `json:"id"`        // client id
	Addr     string `json:"addr"`      // client address:port
	FD       string `json:"fd"`        // file descriptor
	Name     string `json:"name"`      // client name (CLIENT SETNAME)
	Cmd      string `json:"cmd"`       // last command
	Age      int64  `json:"age"`       // connected seconds
	Idle     int64  `json:"idle"`      // idle seconds
	DB       string `json:"db"`        // db index, a string in the API
	Flags    string `json:"flags"`     // client flags, "N" by default
	Sub      int64  `json:"sub"`       // subscribed channels
	Psub     int64  `json:"psub"`      // subscribed patterns
	Multi    int64  `json:"multi"`     // commands queued in MULTI (-1 outside)
	Qbuf     int64  `json:"qbuf"`      // query buffer length
	QbufFree int64  `json:"qbuf_free"` // free query buffer
	Obl      int64  `json:"obl"`       // output buffer length
	Oll      int64  `json:"oll"`       // output list length
	Omem     int64  `json:"omem"`      // output memory
	Events   string `json:"events"`    // "r" or "w"
	Network  string `json:"network"`   // network type
	Peer     string `json:"peer"`      // instance-side address:port (meaning UNCONFIRMED)
	User     string `json:"user"`      // ACL user
}

// plainClientInfo is ClientInfo without its tolerant UnmarshalJSON.
type plainClientInfo ClientInfo

// wireClientInfo is ClientInfo as it may arrive.
type wireClientInfo struct {
	ID       FlexString `json:"id"`
	Addr     FlexString `json:"addr"`
	FD       FlexString `json:"fd"`
	Name     FlexString `json:"name"`
	Cmd      FlexString `json:"cmd"`
	Age      FlexInt    `json:"age"`
	Idle     FlexInt    `json:"idle"`
	DB       FlexString `json:"db"`
	Flags    FlexString `json:"flags"`
	Sub      FlexInt    `json:"sub"`
	Psub     FlexInt    `json:"psub"`
	Multi    FlexInt    `json:"multi"`
	Qbuf     FlexInt    `json:"qbuf"`
	QbufFree FlexInt    `json:"qbuf_free"`
	Obl      FlexInt    `json:"obl"`
	Oll      FlexInt    `json:"oll"`
	Omem     FlexInt    `json:"omem"`
	Events   FlexString `json:"events"`
	Network  FlexString `json:"network"`
	Peer     FlexString `json:"peer"`
	User     FlexString `json:"user"`
}

// UnmarshalJSON accepts numbers as strings and strings as numbers, nulls and
// unknown fields.
func (c *ClientInfo) UnmarshalJSON(b []byte) error {
	var w wireClientInfo
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("client info: %w", err)
	}
	*c = w.clientInfo()
	return nil
}

func (w *wireClientInfo) clientInfo() ClientInfo {
	return ClientInfo{
		ID: string(w.ID), Addr: string(w.Addr), FD: string(w.FD), Name: string(w.Name), Cmd: string(w.Cmd),
		Age: int64(w.Age), Idle: int64(w.Idle), DB: string(w.DB), Flags: string(w.Flags),
		Sub: int64(w.Sub), Psub: int64(w.Psub), Multi: int64(w.Multi), Qbuf: int64(w.Qbuf),
		QbufFree: int64(w.QbufFree), Obl: int64(w.Obl), Oll: int64(w.Oll), Omem: int64(w.Omem),
		Events: string(w.Events), Network: string(w.Network), Peer: string(w.Peer), User: string(w.User),
	}
}

// ClientList is one page of ListClients, or a whole snapshot from ListAllClients.
type ClientList struct {
	// Time is the DCS "data update time": when the listed snapshot was taken.
	Time FlexTime `json:"time"`
	// Count is the total number of sessions (after the addr filter, if any).
	Count   int64        `json:"count"`
	Clients []ClientInfo `json:"clients"`
}

// UnmarshalJSON is tolerant of a string count and a null client list.
func (l *ClientList) UnmarshalJSON(b []byte) error {
	// Fast path: the documented types (strings and numbers where the API
	// says so) decode without a custom method per field. Any type quirk falls
	// back to the tolerant decoder below.
	var fast struct {
		Time    FlexTime          `json:"time"`
		Count   FlexInt           `json:"count"`
		Clients []plainClientInfo `json:"clients"`
	}
	err := json.Unmarshal(b, &fast)
	var te *json.UnmarshalTypeError
	if err == nil {
		*l = ClientList{Time: fast.Time, Count: int64(fast.Count)}
		if fast.Clients != nil {
			l.Clients = make([]ClientInfo, len(fast.Clients))
			for i := range fast.Clients {
				l.Clients[i] = ClientInfo(fast.Clients[i])
			}
		}
		return nil
	}
	if !errors.As(err, &te) {
		return err
	}
	// Decoding into the wire form directly (not through ClientInfo's own
	// UnmarshalJSON) lets encoding/json validate the body once, not once more
	// per client.
	var w struct {
		Time    FlexTime          `json:"time"`
		Count   FlexInt           `json:"count"`
		Clients []*wireClientInfo `json:"clients"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*l = ClientList{Time: w.Time, Count: int64(w.Count)}
	if w.Clients != nil {
		l.Clients = make([]ClientInfo, len(w.Clients))
		for i, c := range w.Clients {
			if c != nil {
				l.Clients[i] = c.clientInfo()
			}
		}
	}
	return nil
}

// JobStatus is the state of a DCS job.
type JobStatus string

// Job states reported by ShowJobInfo.
const (
	JobInit    JobStatus = "INIT"
	JobRunning JobStatus = "RUNNING"
	JobSuccess JobStatus = "SUCCESS"
	JobFail    JobStatus = "FAIL"
)

// Done reports whether the job reached a final state.
func (s JobStatus) Done() bool { return s == JobSuccess || s == JobFail }

// Job is the answer of ShowJobInfo.
type Job struct {
	JobID   string    `json:"job_id"`
	JobType string    `json:"job_type"`
	Status  JobStatus `json:"status"`
	// BeginTime and EndTime arrive as epoch milliseconds in strings.
	BeginTime time.Time `json:"begin_time"`
	EndTime   time.Time `json:"end_time"`
	// FailReason is set when Status is FAIL (null otherwise).
	FailReason string `json:"fail_reason,omitempty"`
}

// UnmarshalJSON decodes the wire form (string epoch ms, null fail_reason).
func (j *Job) UnmarshalJSON(b []byte) error {
	var w struct {
		JobID      FlexString `json:"job_id"`
		JobType    FlexString `json:"job_type"`
		Status     FlexString `json:"status"`
		BeginTime  FlexTime   `json:"begin_time"`
		EndTime    FlexTime   `json:"end_time"`
		FailReason FlexString `json:"fail_reason"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*j = Job{JobID: string(w.JobID), JobType: string(w.JobType), Status: JobStatus(w.Status),
		BeginTime: w.BeginTime.Time, EndTime: w.EndTime.Time, FailReason: string(w.FailReason)}
	return nil
}

// Instance is a DCS instance as ListInstances and ShowInstance describe it.
// CacheMode and MaxClients are only filled by ShowInstance.
type Instance struct {
	InstanceID    string   `json:"instance_id"`
	Name          string   `json:"name"`
	Engine        string   `json:"engine"`
	EngineVersion string   `json:"engine_version"`
	Status        string   `json:"status"`
	CacheMode     string   `json:"cache_mode,omitempty"` // single, ha, ha_rw_split, proxy, cluster
	Capacity      int64    `json:"capacity"`
	MaxMemory     int64    `json:"max_memory"`
	UsedMemory    int64    `json:"used_memory"`
	MaxClients    int64    `json:"max_clients,omitempty"`
	IP            string   `json:"ip"`
	Port          int64    `json:"port"`
	DomainName    string   `json:"domain_name"`
	SpecCode      string   `json:"spec_code"`
	CreatedAt     string   `json:"created_at"`
	AZCodes       []string `json:"az_codes,omitempty"`
}

// UnmarshalJSON is tolerant of numbers as strings and nulls.
func (in *Instance) UnmarshalJSON(b []byte) error {
	var w struct {
		InstanceID    FlexString `json:"instance_id"`
		Name          FlexString `json:"name"`
		Engine        FlexString `json:"engine"`
		EngineVersion FlexString `json:"engine_version"`
		Status        FlexString `json:"status"`
		CacheMode     FlexString `json:"cache_mode"`
		Capacity      FlexInt    `json:"capacity"`
		MaxMemory     FlexInt    `json:"max_memory"`
		UsedMemory    FlexInt    `json:"used_memory"`
		MaxClients    FlexInt    `json:"max_clients"`
		IP            FlexString `json:"ip"`
		Port          FlexInt    `json:"port"`
		DomainName    FlexString `json:"domain_name"`
		SpecCode      FlexString `json:"spec_code"`
		CreatedAt     FlexString `json:"created_at"`
		AZCodes       []string   `json:"az_codes"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*in = Instance{InstanceID: string(w.InstanceID), Name: string(w.Name), Engine: string(w.Engine),
		EngineVersion: string(w.EngineVersion), Status: string(w.Status), CacheMode: string(w.CacheMode),
		Capacity: int64(w.Capacity), MaxMemory: int64(w.MaxMemory), UsedMemory: int64(w.UsedMemory),
		MaxClients: int64(w.MaxClients), IP: string(w.IP), Port: int64(w.Port), DomainName: string(w.DomainName),
		SpecCode: string(w.SpecCode), CreatedAt: string(w.CreatedAt), AZCodes: w.AZCodes}
	return nil
}

// Node is a logical node of an instance (GoSDK NodesInfoResp). NodeID is the
// value ScanClients and ListClients take.
type Node struct {
	LogicalNodeID string `json:"logical_node_id"`
	Name          string `json:"name"`
	Status        string `json:"status"`    // Creating, Active, Inactive, Deleting, AddSharding
	AZCode        string `json:"az_code"`   //
	NodeRole      string `json:"node_role"` // redis-server or redis-proxy
	NodeType      string `json:"node_type"` // master, slave or proxy
	NodeIP        string `json:"node_ip"`
	NodePort      string `json:"node_port"`
	NodeID        string `json:"node_id"`
	GroupID       string `json:"group_id"`
	GroupName     string `json:"group_name"`
}

// UnmarshalJSON is tolerant of numbers as strings and nulls.
func (n *Node) UnmarshalJSON(b []byte) error {
	var w struct {
		LogicalNodeID FlexString `json:"logical_node_id"`
		Name          FlexString `json:"name"`
		Status        FlexString `json:"status"`
		AZCode        FlexString `json:"az_code"`
		NodeRole      FlexString `json:"node_role"`
		NodeType      FlexString `json:"node_type"`
		NodeIP        FlexString `json:"node_ip"`
		NodePort      FlexString `json:"node_port"`
		NodeID        FlexString `json:"node_id"`
		GroupID       FlexString `json:"group_id"`
		GroupName     FlexString `json:"group_name"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*n = Node{LogicalNodeID: string(w.LogicalNodeID), Name: string(w.Name), Status: string(w.Status),
		AZCode: string(w.AZCode), NodeRole: string(w.NodeRole), NodeType: string(w.NodeType),
		NodeIP: string(w.NodeIP), NodePort: string(w.NodePort), NodeID: string(w.NodeID),
		GroupID: string(w.GroupID), GroupName: string(w.GroupName)}
	return nil
}

// IsProxy reports whether the node is a proxy (node_role redis-proxy or node_type proxy).
func (n Node) IsProxy() bool { return n.NodeRole == "redis-proxy" || n.NodeType == "proxy" }
