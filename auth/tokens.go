package auth

import "net/http"

// API tokens. (Filled in by the API-token work.)

func (s *Service) authenticateToken(r *http.Request) (Identity, bool) { return Identity{}, false }

func (s *Service) listTokens(w http.ResponseWriter, r *http.Request) error {
	return fail(http.StatusNotImplemented, "not implemented yet", nil)
}

func (s *Service) createToken(w http.ResponseWriter, r *http.Request) error {
	return fail(http.StatusNotImplemented, "not implemented yet", nil)
}

func (s *Service) revokeToken(w http.ResponseWriter, r *http.Request) error {
	return fail(http.StatusNotImplemented, "not implemented yet", nil)
}

func (s *Service) tokensPage(w http.ResponseWriter, r *http.Request) error {
	return fail(http.StatusNotFound, "not implemented yet", nil)
}
