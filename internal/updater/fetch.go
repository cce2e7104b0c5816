package updater

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// HTTPFetcher is go-tuf's Fetcher over an HTTP client: each request is
// made under Ctx (required; go-tuf's interface has none, so Client sets it
// before each call under its mutex) and signed when Sign is set.
type HTTPFetcher struct {
	Ctx    context.Context
	Client *http.Client
	Sign   func(*http.Request) error
}

func (f *HTTPFetcher) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	req, err := http.NewRequestWithContext(f.Ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if f.Sign != nil {
		if err := f.Sign(req); err != nil {
			return nil, fmt.Errorf("sign request: %w", err)
		}
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		return nil, &metadata.ErrDownload{Msg: err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// go-tuf reads a 404 on N.root.json as "no newer root".
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: url}
	}
	if resp.ContentLength > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is %d bytes, more than %d", url, resp.ContentLength, maxLength)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
	if err != nil {
		return nil, &metadata.ErrDownload{Msg: err.Error()}
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is more than %d bytes", url, maxLength)}
	}
	return data, nil
}
