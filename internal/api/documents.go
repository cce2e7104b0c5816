package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/tetherhq/tether/internal/auth"
	"github.com/tetherhq/tether/internal/document"
	"github.com/tetherhq/tether/internal/extract"
)

// upload accepts one multipart field "file". The body is streamed to a spool
// file, never held whole in memory.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	if s.Gate != nil {
		if err := s.Gate(s.Now()); err != nil {
			writeError(w, http.StatusForbidden, err.Error())
			return
		}
	}
	// Allow a little over the limit for the multipart framing; the document
	// itself is held to the limit exactly by Uploads.
	r.Body = http.MaxBytesReader(w, r.Body, s.Uploads.MaxBytes+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, http.StatusBadRequest, "expected a multipart/form-data body with a field named \"file\"")
		return
	}
	for {
		part, err := mr.NextPart()
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the upload exceeds the limit of %d bytes", s.Uploads.MaxBytes))
				return
			}
			writeError(w, http.StatusBadRequest, "no multipart field named \"file\" in the request")
			return
		}
		if part.FormName() != "file" {
			part.Close()
			continue
		}
		d, err := s.Uploads.Upload(r.Context(), owner(r), part.FileName(), part)
		part.Close()
		var tooBig *http.MaxBytesError
		switch {
		case err == nil:
			writeJSON(w, http.StatusAccepted, d)
		case errors.Is(err, document.ErrTooLarge) || errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the upload exceeds the limit of %d bytes", s.Uploads.MaxBytes))
		case errors.Is(err, extract.ErrUnsupported):
			writeError(w, http.StatusUnsupportedMediaType, "unsupported document type; supported types: "+extract.SupportedTypes())
		case errors.Is(err, document.ErrEmpty):
			writeError(w, http.StatusBadRequest, "the uploaded file is empty")
		case errors.Is(err, document.ErrIncomplete):
			writeError(w, http.StatusBadRequest, "the upload was cut off or is not well-formed multipart; send it again")
		default:
			s.Log.Error("upload", "err", err)
			writeError(w, http.StatusInternalServerError, "the upload could not be stored; try again")
		}
		return
	}
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	d, err := s.Store.Owned(r.Context(), owner(r), id)
	if s.storeErr(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeError(w, http.StatusBadRequest, "limit must be a whole number from 1 to 500")
			return
		}
		limit = n
	}
	docs, next, err := s.Store.List(r.Context(), owner(r), limit, r.URL.Query().Get("cursor"))
	if errors.Is(err, document.ErrBadCursor) {
		writeError(w, http.StatusBadRequest, "cursor is not one this service returned; start again without it")
		return
	}
	if s.storeErr(w, err) {
		return
	}
	if docs == nil {
		docs = []document.Document{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"documents": docs, "next_cursor": next})
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if s.storeErr(w, document.Remove(r.Context(), s.Store, s.Blobs, owner(r), id)) {
		return
	}
	s.Log.Info("document deleted", "document_id", id)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) result(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	res, err := s.Store.Result(r.Context(), owner(r), id)
	switch {
	case errors.Is(err, document.ErrNotFinished):
		writeError(w, http.StatusConflict, "processing has not finished; poll GET /v1/documents/"+id)
		return
	case errors.Is(err, document.ErrNoResult):
		writeError(w, http.StatusConflict, "the document failed and has no result; see its error")
		return
	}
	if s.storeErr(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func pathID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !document.ValidID(id) {
		writeError(w, http.StatusNotFound, "no such document")
		return "", false
	}
	return id, true
}

// storeErr writes the response for a store error and reports whether it did.
func (s *Server) storeErr(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, document.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such document")
	default:
		s.Log.Error("store", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error; try again")
	}
	return true
}

// owner names the authenticated caller as the documents' owner: each OIDC
// subject and each API token sees only the documents it uploaded. The auth
// middleware guarantees a principal; without one the empty owner matches
// nothing a principal uploaded.
func owner(r *http.Request) string {
	p, _ := auth.PrincipalFrom(r.Context())
	return p.Kind + ":" + p.ID
}
