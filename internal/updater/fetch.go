package updater

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
)

// NewHTTPFetcher is go-tuf's Fetcher over client, each request under ctx.
func NewHTTPFetcher(ctx context.Context, client *http.Client) fetcher.Fetcher {
	return &httpFetcher{ctx: ctx, client: client}
}

// httpFetcher is go-tuf's Fetcher over the agent's HTTP client: it honours
// the caller's context (go-tuf's interface has none, so the client sets ctx
// before each call under its mutex) and signs each request when configured.
type httpFetcher struct {
	ctx    context.Context
	client *http.Client
	sign   func(*http.Request) error
}

func (f *httpFetcher) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	ctx := f.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if f.sign != nil {
		if err := f.sign(req); err != nil {
			return nil, fmt.Errorf("sign request: %w", err)
		}
	}
	resp, err := f.client.Do(req)
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
