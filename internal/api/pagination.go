package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"

	"github.com/openstage/openstage/internal/store"
)

// Pagination tokens are opaque, tamper-evident and bound to their query (docs/DESIGN.md §2.4): the cursor of
// the last row served, followed by an HMAC over the operation, the query's filters and the cursor. A token
// used with other filters, edited, or made up fails the MAC. The encoding is unpadded base64url, inside the
// model's PaginationToken alphabet [a-zA-Z0-9+/=_-] and far below its 1024 characters.

const (
	pageTokenVersion = 1
	pageMACBytes     = 16
	defaultPageSize  = 50
)

var errBadPageToken = errors.New("nextToken is invalid, expired, or was issued for a different query")

type pager struct{ key []byte }

// mac binds a cursor to op and its query (everything but maxResults and nextToken).
func (p pager) mac(op string, query any, payload []byte) []byte {
	q, _ := json.Marshal(query) // query values are plain structs of strings and bools
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(op))
	m.Write([]byte{0})
	m.Write(q)
	m.Write([]byte{0})
	m.Write(payload)
	return m.Sum(nil)[:pageMACBytes]
}

func (p pager) encode(op string, query any, c store.Cursor) string {
	payload := make([]byte, 0, 1+8+8+len(c.ID))
	payload = append(payload, pageTokenVersion)
	var t int64
	if !c.Time.IsZero() {
		t = c.Time.UnixNano()
	}
	payload = binary.BigEndian.AppendUint64(payload, uint64(t))
	payload = binary.BigEndian.AppendUint64(payload, uint64(c.Seq))
	payload = append(payload, c.ID...)
	return base64.RawURLEncoding.EncodeToString(append(payload, p.mac(op, query, payload)...))
}

// decode returns the cursor of a token, nil for no token.
func (p pager) decode(op string, query any, tok *string) (*store.Cursor, error) {
	if tok == nil || *tok == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(*tok)
	if err != nil || len(raw) < 1+8+8+pageMACBytes || raw[0] != pageTokenVersion {
		return nil, errBadPageToken
	}
	payload, sum := raw[:len(raw)-pageMACBytes], raw[len(raw)-pageMACBytes:]
	if !hmac.Equal(sum, p.mac(op, query, payload)) {
		return nil, errBadPageToken
	}
	c := &store.Cursor{
		Seq: int64(binary.BigEndian.Uint64(payload[9:17])),
		ID:  string(payload[17:]),
	}
	if t := int64(binary.BigEndian.Uint64(payload[1:9])); t != 0 {
		c.Time = time.Unix(0, t).UTC()
	}
	return c, nil
}

// page turns a request's maxResults and nextToken into a store page that fetches one row more than asked,
// so the handler knows whether to hand out a nextToken.
func (p pager) page(op string, query any, maxResults *int32, next *string) (store.Page, int, error) {
	n := defaultPageSize
	if maxResults != nil {
		n = int(*maxResults)
	}
	c, err := p.decode(op, query, next)
	if err != nil {
		return store.Page{}, 0, err
	}
	return store.Page{After: c, Limit: n + 1}, n, nil
}

// trim cuts rows to the page size and returns the nextToken, nil on the last page.
func trim[T any](p pager, op string, query any, rows []T, n int, cursor func(T) store.Cursor) ([]T, *string) {
	if len(rows) <= n {
		return rows, nil
	}
	rows = rows[:n]
	t := p.encode(op, query, cursor(rows[n-1]))
	return rows, &t
}
