package auth

import "net/http"

// Account self-service and recovery handlers. (Filled in by the recovery and account work.)

func (s *Service) renamePasskey(w http.ResponseWriter, r *http.Request) error {
	return fail(http.StatusNotImplemented, "not implemented yet", nil)
}

func (s *Service) removePasskey(w http.ResponseWriter, r *http.Request) error {
	return fail(http.StatusNotImplemented, "not implemented yet", nil)
}

func (s *Service) regenerateCodes(w http.ResponseWriter, r *http.Request) error {
	return fail(http.StatusNotImplemented, "not implemented yet", nil)
}

func (s *Service) revokeSession(w http.ResponseWriter, r *http.Request) error {
	return fail(http.StatusNotImplemented, "not implemented yet", nil)
}

func (s *Service) revokeAllSessions(w http.ResponseWriter, r *http.Request) error {
	return fail(http.StatusNotImplemented, "not implemented yet", nil)
}

func (s *Service) recoverWithCode(w http.ResponseWriter, r *http.Request) error {
	return fail(http.StatusNotImplemented, "not implemented yet", nil)
}

func (s *Service) recoverByEmail(w http.ResponseWriter, r *http.Request) error {
	return fail(http.StatusNotImplemented, "not implemented yet", nil)
}
