package document

// TestOwner owns the documents NewForTest makes.
const TestOwner = "token:test"

// NewForTest builds a queued document record as Uploads would, for TestOwner.
func NewForTest(id, filename, mediaType string, size int64) Document {
	return Document{ID: id, Status: Queued, Filename: filename, MediaType: mediaType, Size: size, blobKey: blobKey(id), owner: TestOwner}
}
