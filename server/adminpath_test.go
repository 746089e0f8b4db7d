package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// An application name in the admin API's path that is not a valid name
// (an escaped slash) is answered 400, not 500 (R53).
func TestAdminInvalidAppInPath_R53(t *testing.T) {
	f := adminRepo(t, nil)
	h := f.handler(t)
	r := httptest.NewRequest("GET", "https://x/api/v1/apps/hello%2F..%2Fother/role", nil)
	r.Header.Set("Authorization", "Bearer "+f.hello)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("invalid app in path answered %d, want 400", w.Code)
	}
}
