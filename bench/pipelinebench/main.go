// Command pipelinebench measures the document service's throughput on the
// embedded defaults: it uploads every PDF in a corpus to a running docsvc api
// (with its worker), waits until each reaches a terminal state, and reports
// documents per second upload → result. Beside it, in the same run, it times
// poppler's pdftotext on the same files, the baseline the ratio is against.
//
// Usage: pipelinebench -url http://127.0.0.1:18580 -token-file F -corpus DIR [-concurrency 4]
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:18580", "docsvc api base URL")
	tokenFile := flag.String("token-file", "", "file holding an API token")
	corpus := flag.String("corpus", "/tmp/tether-pdf-corpus", "directory of PDFs")
	conc := flag.Int("concurrency", 4, "parallel uploads")
	flag.Parse()
	if err := run(*url, *tokenFile, *corpus, *conc); err != nil {
		fmt.Fprintln(os.Stderr, "pipelinebench:", err)
		os.Exit(1)
	}
}

func run(url, tokenFile, corpus string, conc int) error {
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		return err
	}
	token := strings.TrimSpace(string(tok))
	files, _ := filepath.Glob(filepath.Join(corpus, "*.pdf"))
	sort.Strings(files)
	if len(files) == 0 {
		return fmt.Errorf("no PDFs in %s (run bench/corpus.sh)", corpus)
	}
	var total int64
	for _, f := range files {
		st, _ := os.Stat(f)
		total += st.Size()
	}

	// Baseline: pdftotext on every file, one after another.
	start := time.Now()
	for _, f := range files {
		if err := exec.Command("pdftotext", "-q", f, os.DevNull).Run(); err != nil {
			fmt.Fprintf(os.Stderr, "pdftotext %s: %v (counted anyway)\n", filepath.Base(f), err)
		}
	}
	baseline := time.Since(start)

	// The pipeline: upload all, then wait for every document to finish.
	start = time.Now()
	ids := make([]string, len(files))
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	var upErr error
	var mu sync.Mutex
	for i, f := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			id, err := upload(url, token, f)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && upErr == nil {
				upErr = err
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	if upErr != nil {
		return upErr
	}
	succeeded, failed := 0, 0
	for _, id := range ids {
		for {
			st, err := status(url, token, id)
			if err != nil {
				return err
			}
			if st == "succeeded" {
				succeeded++
				break
			}
			if st == "failed" {
				failed++
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	n := float64(len(files))
	fmt.Printf("corpus: %d PDFs, %.1f MiB\n", len(files), float64(total)/(1<<20))
	fmt.Printf("pipeline (upload → result, embedded defaults): %.2f docs/s  (%d succeeded, %d failed, %s)\n", n/elapsed.Seconds(), succeeded, failed, elapsed.Round(time.Millisecond))
	fmt.Printf("baseline (pdftotext alone, sequential):          %.2f docs/s  (%s)\n", n/baseline.Seconds(), baseline.Round(time.Millisecond))
	fmt.Printf("ratio pipeline/baseline throughput: %.2f\n", baseline.Seconds()/elapsed.Seconds())
	return nil
}

func upload(url, token, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", filepath.Base(path))
	fw.Write(data)
	mw.Close()
	req, _ := http.NewRequest("POST", url+"/v1/documents", &buf)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("upload %s: %d %s", filepath.Base(path), res.StatusCode, body)
	}
	var d struct{ ID string }
	return d.ID, json.Unmarshal(body, &d)
}

func status(url, token, id string) (string, error) {
	req, _ := http.NewRequest("GET", url+"/v1/documents/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var d struct{ Status string }
	return d.Status, json.NewDecoder(res.Body).Decode(&d)
}
