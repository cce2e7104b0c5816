package document

// NewForTest builds a queued document record as Uploads would.
func NewForTest(id, filename, mediaType string, size int64) Document {
	return Document{ID: id, Status: Queued, Filename: filename, MediaType: mediaType, Size: size, blobKey: blobKey(id)}
}
