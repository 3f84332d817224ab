package api

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI 3.1 description of every /v1 operation
// and of the outbound app webhook. It is written by hand, next to the
// handlers it describes; TestEveryRouteDocumented fails when routes() and
// the document disagree, and cmd/billingd's TestOpenAPIRealRequests sends
// real requests for every operation and validates both sides against it.
//
//go:embed openapi.json
var openAPIDocument []byte

// handleOpenAPI serves GET /openapi.json, with no token: the API's shape is
// no secret.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	writeTagged(w, r, openAPIDocument, openAPIETag, nil)
}

var openAPIETag = etag(openAPIDocument)
