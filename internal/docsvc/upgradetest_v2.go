//go:build upgradetest_v2

package docsvc

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tetherhq/tether/internal/sqldb"
)

// The upgrade tests' second release: GET /v1/documents/{id} answers one
// more field, upgradetest_note, read from the column its migration adds.
func init() {
	testHandlers = append(testHandlers, func(h http.Handler, db *sqldb.DB) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, ok := strings.CutPrefix(r.URL.Path, "/v1/documents/")
			if r.Method != http.MethodGet || !ok || id == "" || strings.Contains(id, "/") {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			var doc map[string]any
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
				copyResponse(w, rec.Code, rec.Header(), rec.Body.Bytes())
				return
			}
			var note sql.NullString
			if err := db.QueryRowContext(r.Context(), "SELECT upgradetest_note FROM documents WHERE id = ?", id).Scan(&note); err != nil {
				http.Error(w, "upgradetest_v2: "+err.Error(), http.StatusInternalServerError)
				return
			}
			doc["upgradetest_note"] = note.String
			var buf bytes.Buffer
			_ = json.NewEncoder(&buf).Encode(doc)
			copyResponse(w, http.StatusOK, rec.Header(), buf.Bytes())
		})
	})
}

func copyResponse(w http.ResponseWriter, code int, hdr http.Header, body []byte) {
	for k, v := range hdr {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(code)
	w.Write(body)
}
