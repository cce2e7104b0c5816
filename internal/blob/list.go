package blob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Object names one stored object and its size.
type Object struct {
	Key  string
	Size int64
}

// Lister is implemented by stores that can enumerate their keys: the vendor
// plane mirrors release repositories out of a store and needs to know what
// is there. The document service never lists.
type Lister interface {
	// List returns every object whose key starts with prefix, sorted by key.
	// prefix is "" or a valid key followed by "/".
	List(ctx context.Context, prefix string) ([]Object, error)
}

func checkListPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if !strings.HasSuffix(prefix, "/") {
		return fmt.Errorf("%w: list prefix %q must end with /", ErrInvalidKey, prefix)
	}
	return ValidateKey(strings.TrimSuffix(prefix, "/"))
}

// List walks the directory under prefix; temporary files of writes in
// progress (dot names) are not objects and are skipped.
func (f *File) List(ctx context.Context, prefix string) ([]Object, error) {
	if err := checkListPrefix(prefix); err != nil {
		return nil, fmt.Errorf("blob: list: %w", err)
	}
	var out []Object
	start := filepath.Join(f.root, filepath.FromSlash(prefix))
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == start {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != start {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(f.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if ValidateKey(key) != nil {
			return nil // not something Put could have written
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // deleted while walking
			}
			return err
		}
		out = append(out, Object{Key: key, Size: info.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("blob: list %s: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// List pages through ListObjectsV2 (1000 keys a request) under the store's
// prefix and returns keys relative to it.
func (s *S3) List(ctx context.Context, prefix string) ([]Object, error) {
	if err := checkListPrefix(prefix); err != nil {
		return nil, fmt.Errorf("blob: list: %w", err)
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket)}
	if p := s.prefix + prefix; p != "" {
		in.Prefix = aws.String(p)
	}
	var out []Object
	pages := s3.NewListObjectsV2Paginator(s.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("blob: list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
			if ValidateKey(key) != nil {
				continue // written by something other than this store
			}
			out = append(out, Object{Key: key, Size: aws.ToInt64(o.Size)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
