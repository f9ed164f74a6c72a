package mdp

import (
	"encoding/json"
	"fmt"

	"github.com/domo-framework/domo"
)

// StatusOK is the status frame of a successful reply. Any other status is an
// error code (domo.Code), and the reply's payload is the JSON error object.
const StatusOK = "ok"

var statusOK = []byte(StatusOK)

// RequestBody is the domo envelope of a request: the MDP body frames
// [method, headers, payload].
type RequestBody struct {
	Method  []byte
	Headers Headers
	Payload []byte
}

// ReplyBody is the domo envelope of a reply: the MDP body frames
// [status, headers, payload].
type ReplyBody struct {
	Status  []byte
	Headers Headers
	Payload []byte
}

// ParseRequest decodes a request envelope from an MDP body. It fails with
// ErrMalformed if the body is not one (a plain MDP body, for instance).
func ParseRequest(body [][]byte) (RequestBody, error) {
	if err := checkEnvelope(body); err != nil {
		return RequestBody{}, err
	}
	return RequestBody{Method: body[0], Headers: Headers(body[1]), Payload: body[2]}, nil
}

// ParseReply decodes a reply envelope from an MDP body.
func ParseReply(body [][]byte) (ReplyBody, error) {
	if err := checkEnvelope(body); err != nil {
		return ReplyBody{}, err
	}
	if len(body[0]) == 0 {
		return ReplyBody{}, fmt.Errorf("%w: empty reply status", ErrMalformed)
	}
	return ReplyBody{Status: body[0], Headers: Headers(body[1]), Payload: body[2]}, nil
}

func checkEnvelope(body [][]byte) error {
	if len(body) != 3 {
		return fmt.Errorf("%w: envelope has %d frames, want 3", ErrMalformed, len(body))
	}
	if len(body[1]) == 0 || body[1][0] != HeadersMagic {
		return fmt.Errorf("%w: not a domo envelope", ErrMalformed)
	}
	return Headers(body[1]).Validate()
}

// IsEnvelope reports whether body has the shape of a domo envelope: three
// frames whose second is a valid headers frame.
func IsEnvelope(body [][]byte) bool { return checkEnvelope(body) == nil }

// Append appends the envelope's three frames to dst.
func (r RequestBody) Append(dst [][]byte) [][]byte {
	return append(dst, r.Method, r.Headers, r.Payload)
}

// Append appends the envelope's three frames to dst.
func (r ReplyBody) Append(dst [][]byte) [][]byte {
	return append(dst, r.Status, r.Headers, r.Payload)
}

// OK reports whether the reply is a success.
func (r ReplyBody) OK() bool { return string(r.Status) == StatusOK }

// Err returns the reply's error, or nil for a success. An error payload that
// is not a JSON error object still yields an *domo.Error with the status as
// its code and the payload as its message.
func (r ReplyBody) Err() *domo.Error {
	if r.OK() {
		return nil
	}
	e := &domo.Error{}
	if err := json.Unmarshal(r.Payload, e); err != nil || e.Code == "" {
		e = &domo.Error{Message: string(r.Payload)}
	}
	e.Code = domo.Code(r.Status)
	return e
}

// OKReply returns the envelope of a successful reply.
func OKReply(headers Headers, payload []byte) ReplyBody {
	return ReplyBody{Status: statusOK, Headers: headers, Payload: payload}
}

// ErrorReply returns the envelope of a failed reply carrying e. The request
// id, if any, belongs in headers. An error without a code is sent as
// internal, since an empty status is not a valid reply.
func ErrorReply(headers Headers, e *domo.Error) ReplyBody {
	if e.Code == "" {
		c := *e
		c.Code = domo.CodeInternal
		e = &c
	}
	payload, err := json.Marshal(e)
	if err != nil { // Details is not valid JSON; drop it rather than the error.
		payload, _ = json.Marshal(&domo.Error{Code: e.Code, Message: e.Message})
	}
	if len(headers) == 0 {
		headers = Headers{HeadersMagic}
	}
	return ReplyBody{Status: []byte(e.Code), Headers: headers, Payload: payload}
}
