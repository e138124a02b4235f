package cluster

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// The front door (docs/DESIGN.md §6.2): every node accepts every client request, and one that belongs to
// another node's stage is reverse-proxied to that node, the events WebSocket included (a browser's
// WebSocket follows no redirect, and browsers drop Authorization on a cross-origin redirect, so a redirect
// would not do). The owner answers with its own ICE candidates, so the media itself goes straight to it.

// Route is the kind of request a front door stands before: how it finds the request's owner.
type Route int

const (
	// RouteWHIP: a WHIP publish or subscribe POST; its stage is the bearer token's.
	RouteWHIP Route = iota
	// RouteResource: a request on a WHIP session resource (DELETE, PATCH, the Link rels); the resource id
	// begins with its node's id (whip.Config.Node).
	RouteResource
	// RouteEvents: the stage events WebSocket; its stage is the path's, or the token's (the subprotocol).
	RouteEvents
	routeCount
)

var routeNames = [routeCount]string{"whip", "whip_resource", "events"}

func (r Route) String() string { return routeNames[r] }

// maxToken bounds what the front door parses of a token it does not verify (the owner verifies it).
const maxToken = 16 << 10

// FrontDoor stands before next, the handler of route on this node: it serves the request here when this
// node owns its stage (claiming the stage when no live node does), and forwards it to the owner otherwise.
// A request another node forwarded here (signed with the nodes' key) carries its client's address, which
// becomes the request's RemoteAddr, so the per-address admission budget and client info see the client,
// not the node; it is never forwarded again.
func (c *Cluster) FrontDoor(route Route, next http.Handler) http.Handler {
	proxy := c.reverseProxy()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hop := false
		if r.Header.Get(headerAuth) != "" {
			if _, client, ok := c.verified(r, ""); ok {
				hop = true
				r = r.WithContext(withForwarded(r.Context()))
				if client != "" {
					r.RemoteAddr = client
				}
			}
			r.Header.Del(headerAuth) // a client's own is ignored
		}
		if route == RouteResource {
			node, _, ok := strings.Cut(r.PathValue("id"), ".")
			if !ok || hop || store.NodeID(node) == c.cfg.Self.ID {
				next.ServeHTTP(w, r) // here, or nowhere (the handler answers 404)
				return
			}
			n, err := c.cfg.Store.Node(r.Context(), store.NodeID(node), c.cfg.TTL)
			if err != nil || !n.Alive {
				next.ServeHTTP(w, r) // a gone node's resources are gone: 404
				return
			}
			c.forward(proxy, w, r, route, n)
			return
		}
		id := requestStage(r, route)
		if id == "" {
			next.ServeHTTP(w, r) // no token or no stage: the handler refuses it as it should
			return
		}
		other, release, err := c.place(r.Context(), id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			next.ServeHTTP(w, r) // no such stage: the handler refuses the token as it should
		case err != nil:
			c.log.WarnContext(r.Context(), "cluster: placing a stage", "stage", id, "err", err)
			unavailable(w)
		case other == nil:
			defer release()
			next.ServeHTTP(w, r)
		case hop:
			unavailable(w) // ownership moved while the request travelled: the client retries
		default:
			c.forward(proxy, w, r, route, *other)
		}
	})
}

func unavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	http.Error(w, "the stage is moving between nodes; retry", http.StatusServiceUnavailable)
}

// requestStage is the stage a request is for: the events path's, else the token's topic claim, read
// without verification (routing only; the owner verifies the token and checks it against the path).
func requestStage(r *http.Request, route Route) ivs.StageID {
	var raw string
	switch route {
	case RouteEvents:
		if id := r.PathValue("stageId"); id != "" {
			return ivs.StageID(id)
		}
		raw, _, _ = strings.Cut(r.Header.Get("Sec-WebSocket-Protocol"), ",")
	case RouteWHIP:
		if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "Bearer ") {
			raw = a[7:]
		}
	}
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > maxToken {
		return ""
	}
	// Any claims at all (a self-signed token may carry claims of types the registered ones do not take): only
	// the topic matters here, and whether the token is valid is the owner's to say.
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil {
		return ""
	}
	topic, _ := claims["topic"].(string)
	return ivs.StageID(topic)
}

type targetKey struct{}

type target struct {
	url    *url.URL
	client string // the client's address, vouched for in the signature
}

// reverseProxy forwards to the node in the request's context, signing the request for it.
func (c *Cluster) reverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Transport: c.transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := pr.In.Context().Value(targetKey{}).(target)
			pr.SetURL(t.url)
			pr.SetXForwarded()
			pr.Out.Header.Set(headerAuth, c.authHeader(t.client, pr.Out.Method, pr.Out.URL.RequestURI(), ""))
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			c.log.WarnContext(r.Context(), "cluster: forwarding to the owner failed", "err", err)
			if errors.Is(err, context.Canceled) {
				return // the client went away
			}
			unavailable(w)
		},
	}
}

// forward sends the request to node n.
func (c *Cluster) forward(proxy *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request, route Route, n store.Node) {
	u, err := url.Parse(n.URL)
	if err != nil || u.Host == "" {
		c.log.ErrorContext(r.Context(), "cluster: a node's URL is unusable", "node", n.ID, "url", n.URL)
		unavailable(w)
		return
	}
	c.stats.forwarded[route].Add(1)
	client := r.RemoteAddr
	if _, _, err := net.SplitHostPort(client); err != nil {
		client = ""
	}
	ctx := context.WithValue(r.Context(), targetKey{}, target{url: u, client: client})
	proxy.ServeHTTP(w, r.WithContext(ctx))
}
