package proxy

import "net/http"

// debugRequest echoes how Latchkey sees a forward-auth request. (Filled in by the doctor work.)
func (h *Handler) debugRequest(w http.ResponseWriter, r *http.Request) {
	h.auth.ErrorPage(w, r, http.StatusNotFound, "Nothing is served at this address.")
}
