// Package trigger is the worker's event-trigger HTTP API: a script or an
// alerting system asks for the client sessions of DCS nodes now, and reads
// the request's status and result. It also adapts two alert webhooks, so an
// alarm about connections queries the alarmed instance: Prometheus
// Alertmanager, and Huawei Cloud Eye alarms delivered by SMN to an HTTP(S)
// subscription.
//
// The API is off unless a token is configured: TRIGGER_TOKEN, or a file
// named by TRIGGER_TOKEN_FILE (LoadToken; at least 16 characters). NewHandler
// serves these paths (mount it at /api/v1/ of the worker's HTTP server):
//
//	POST /api/v1/queries               202 request ids; 400 bad body; 413 too large
//	GET  /api/v1/queries/{id}          200 status; 404 unknown
//	GET  /api/v1/queries/{id}/result   200 snapshot(s); 409 not finished; 422 failed; 404 unknown/expired
//	POST /api/v1/alertmanager          202 request ids; 200 nothing to do; 400 bad body
//	POST /api/v1/cloudeye              SMN deliveries: 200 confirmed/ignored; 202 request ids;
//	                                   400 bad body; 403 bad signature; 502 confirmation failed
//
// Every answer is JSON; errors are {"error":"<reason>"}. Every endpoint
// answers 401 {"error":"unauthorized"} with WWW-Authenticate: Bearer when the
// token is missing, malformed or wrong (the three look the same), 405 with
// Allow for another method, and 429 with Retry-After when the client IP
// (RemoteAddr; X-Forwarded-For is not trusted) exceeds its rate, 5/s with a
// burst of 10 by default. The rate limit is checked before the token, so
// guessing is slowed too. The token is compared in constant time (SHA-256
// digests with crypto/subtle) and is never logged, nor are bodies. Each
// accepted trigger logs one info line: endpoint, instances, request ids,
// client IP. Counter: dcsjobs_trigger_requests_total{endpoint,code}.
//
// # Queries
//
// The body names an instance and exactly one of node_id, node_ids (at most
// 100) or all_nodes; clean_cache is optional. Unknown fields are refused by
// name, ids are validated (letters, digits, '-', '_'). One request is
// submitted per node (origin "trigger", on the trigger queue), or one
// all-nodes request that the worker expands to the instance's nodes.
//
//	export TOKEN=$(cat /etc/dcsjobs/trigger-token) API=http://127.0.0.1:9180/api/v1
//	curl -sS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
//	    -d '{"instance_id":"11111111-1111-4111-8111-111111111111","node_id":"11111111-0000-4000-8000-000000000001"}' \
//	    $API/queries
//	# 202 {"requests":[{"id":"0193…","instance_id":"1111…","node_id":"1111…","status_url":"/api/v1/queries/0193…"}]}
//	curl -sS -H "Authorization: Bearer $TOKEN" -d '{"instance_id":"4444…","all_nodes":true,"clean_cache":true}' $API/queries
//	curl -sS -H "Authorization: Bearer $TOKEN" -d '{"instance_id":"3333…","node_ids":["3333…01","3333…03"]}' $API/queries
//
// Status and result:
//
//	curl -sS -H "Authorization: Bearer $TOKEN" $API/queries/0193…
//	# {"state":"polling","request":{…,"polls":2,"job_id":"92ad…"},"events":[…],"children":[…]}
//	curl -sS -H "Authorization: Bearer $TOKEN" $API/queries/0193…/result
//	# 200 the snapshot (see the README's result format); an all-nodes request: a JSON array of snapshots
//	# 409 {"error":"request is polling"}   422 {"error":"request failed: …","failures":[…]}
//
// "state" is the request's state, aggregated over the children of an
// all-nodes request (done when all are done, failed when all ended and one
// failed). A script waits with a loop on the status URL; poll every second or
// so, the rate limit counts every call.
//
// # Alertmanager
//
// POST /api/v1/alertmanager takes Alertmanager's webhook body (version "4").
// Each alert with status "firing" and an instance label (the first present of
// Options.AlertmanagerInstanceLabels, default instance_id, dcs_instance_id)
// queries the node named by a node label (node_id, dcs_node_id), or every
// node of the instance. Resolved alerts are ignored; duplicates within one
// payload collapse, and a whole-instance query absorbs node queries of the
// same instance. Alerts without a usable label are listed under "skipped".
// Alert-triggered queries set clean_cache, as the alarm is about now. The
// receiver, with the token in a file readable by Alertmanager:
//
//	receivers:
//	  - name: dcsjobs
//	    webhook_configs:
//	      - url: http://dcsjobs-worker:9180/api/v1/alertmanager
//	        send_resolved: false
//	        max_alerts: 50
//	        http_config:
//	          authorization:
//	            type: Bearer
//	            credentials_file: /etc/alertmanager/dcsjobs-token
//	route:
//	  routes:
//	    - receiver: dcsjobs
//	      matchers: ['alertname =~ "DCS.*Connections.*"']
//	      continue: true
//	      repeat_interval: 1h   # each repeat triggers another query
//
// # Cloud Eye alarms through SMN
//
// Cloud Eye sends alarm notifications to an SMN topic; an HTTP(S)
// subscription of that topic POSTs to /api/v1/cloudeye. SMN cannot send an
// Authorization header, so this endpoint alone also accepts the token as a
// query parameter (compared the same way). Subscribe the endpoint as:
//
//	https://dcsjobs.example.com/api/v1/cloudeye?token=<TOKEN>
//
// Use HTTPS: the token travels in the URL, and URLs end up in proxy and access
// logs (this package never logs it). The SMN envelope is implemented as
// documented in the SMN user guide, "HTTP(S) message format" (smn_ug_a9002)
// and "Message signature verification" (smn_ug_a9003) with its sample code
// (smn_ug_a9004; support.huaweicloud.com/intl/en-us/usermanual-smn/ and the
// same pages in github.com/opentelekomcloud-docs/simple-message-notification):
// header X-SMN-MESSAGE-TYPE and body fields type, signature,
// signature_version, topic_urn, message_id, message, subject, subscribe_url,
// unsubscribe_url, signing_cert_url, timestamp.
//
//   - SubscriptionConfirmation: the subscription is confirmed by a GET of
//     subscribe_url with Options.HTTPClient, only when it is an https URL
//     (it carries SMN's confirmation token; only its host is logged). 200
//     {"confirmed":true}; 502 when SMN refuses.
//   - UnsubscribeConfirmation: logged, 200; nothing is resubscribed.
//   - Notification: the message is read as a Cloud Eye alarm (below). In alarm
//     state: 202 with the request ids; otherwise 200 with the reason under
//     "skipped" (2xx, so that SMN does not retry a message that will never
//     be usable). The request id is "smn_<message_id>", so a redelivered
//     message answers 200 with the existing request ("duplicate": true)
//     instead of starting another query. Like Alertmanager's, these
//     queries set clean_cache.
//
// Signatures: with Options.SMNCertHosts set, every message must carry a v1
// signature that verifies: the certificate is fetched over HTTPS from
// signing_cert_url, whose host must be listed (cached per URL, checked for
// validity), and the signature is RSA PKCS #1 v1.5 with SHA-256 over the
// documented string to sign (SMNMessage.StringToSign). Otherwise 403. The
// algorithm is the one of SMN's Go sample code; its Java sample takes the
// algorithm from the certificate instead, so a region signing otherwise
// would fail verification (turn it off by leaving SMNCertHosts empty). The
// host names of SMN's certificate servers are not documented in anything we
// found (the examples mask them), so there is no default list: with
// SMNCertHosts empty (the default) signatures are not checked and the token
// is the only authentication.
//
// The alarm message: unlike the envelope, the content Cloud Eye puts in an
// HTTP(S) notification is not a documented fixed schema — Cloud Eye's best
// practice "Receiving Alarm Notifications via HTTP/HTTPS" (ces_14_0060) has
// the user create a notification content template that decides the JSON
// fields. The parser therefore reads a JSON object leniently, with names from
// the Cloud Eye API and DCS metric docs: alarm_status or alarm_state
// ("alarm" — the API's alarm_state value —, "firing" or "triggered" mean in
// alarm; "ok", "insufficient_data" and anything else are ignored), namespace
// or metric.namespace (must be SYS.DCS when present), and the instance and
// node ids as top-level fields or dimensions ([{"name","value"}] as in the
// API, or an object): Options.CloudEyeInstanceKeys (dcs_instance_id,
// instance_id, resource_id) and Options.CloudEyeNodeKeys (dcs_node_id,
// node_id, dcs_cluster_redis_node, dcs_cluster_proxy_node,
// dcs_cluster_proxy2_node). Whether the node dimensions of DCS metrics carry
// the node id ScanClients takes is unconfirmed; a node value that is not an
// id queries the whole instance. Configure the alarm's HTTP(S) template to
// produce, for example:
//
//	{"alarm_name":"…","alarm_status":"alarm","namespace":"SYS.DCS",
//	 "dcs_instance_id":"<instance id>","metric_name":"<metric>"}
//
// A notification whose message is not such JSON is acknowledged and ignored,
// with the reason logged and returned.
package trigger
