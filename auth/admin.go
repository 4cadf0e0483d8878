package auth

import "net/http"

// Admin console. (Filled in by the admin-console work.)

func (s *Service) adminRoutes(mux *http.ServeMux) {}
