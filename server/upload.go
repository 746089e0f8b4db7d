package server

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ferry-updates/ferry/repo"
)

var (
	errTooLarge   = errors.New("request too large")
	errBadRequest = errors.New("bad request")
)

// upload is POST /api/v1/apps/{app}/releases. Nothing of the body is read
// when its declared length is over the limit; the role is checked before
// any file is read, and files are streamed to disk, never held in memory,
// and bounded by the lengths the role signed.
func (a *admin) upload(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	if r.ContentLength > a.cfg.MaxUpload {
		w.Header().Set("Connection", "close")
		a.fail(w, r, fmt.Errorf("%w: body of %d bytes, limit %d", errTooLarge, r.ContentLength, a.cfg.MaxUpload))
		return
	}
	select {
	case a.uploads <- struct{}{}:
		defer func() { <-a.uploads }()
	default:
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "other uploads are in progress")
		return
	}
	r.Body = &stallBody{ReadCloser: http.MaxBytesReader(w, r.Body, a.cfg.MaxUpload),
		rc: http.NewResponseController(w), stall: a.cfg.ReadStall}
	res, err := a.receive(r, app)
	if err != nil {
		if statusOf(err) == http.StatusRequestEntityTooLarge {
			w.Header().Set("Connection", "close")
		}
		a.fail(w, r, err)
		return
	}
	type entry struct {
		Path   string `json:"path"`
		Length int64  `json:"length"`
		SHA256 string `json:"sha256"`
	}
	out := struct {
		Published []entry `json:"published"`
	}{Published: []entry{}}
	for _, e := range res.Published {
		out.Published = append(out.Published, entry{e.Path, e.Length, e.SHA256})
	}
	writeJSON(w, http.StatusOK, out)
}

// receive reads the role, checks it, streams the files into a temporary
// directory and publishes them.
func (a *admin) receive(r *http.Request, app string) (repo.Result, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return repo.Result{}, fmt.Errorf("%w: want a multipart/form-data body: %v", errBadRequest, err)
	}
	role, err := a.readRole(mr)
	if err != nil {
		return repo.Result{}, err
	}
	u, err := a.cfg.Repo.CheckUpload(r.Context(), app, role)
	if err != nil {
		return repo.Result{}, err
	}
	dir, err := os.MkdirTemp(a.cfg.TempDir, "upload-")
	if err != nil {
		return repo.Result{}, err
	}
	defer os.RemoveAll(dir)
	files, err := receiveFiles(mr, dir, len(u.New), u.Want())
	if err != nil {
		return repo.Result{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	res, err := a.cfg.Repo.PublishUpload(r.Context(), app, role, files)
	if err != nil {
		return res, err
	}
	tok, _ := r.Context().Value(tokenKey{}).(Token)
	for _, e := range res.Published {
		a.log.Info("admin: published", "app", app, "path", e.Path, "sha256", e.SHA256, "role_version", u.Version,
			"keyids", u.KeyIDs, "token", tok.ID, "remote", clientIP(r))
	}
	return res, nil
}

func (a *admin) readRole(mr *multipart.Reader) ([]byte, error) {
	p, err := mr.NextPart()
	if err != nil {
		return nil, fmt.Errorf("%w: read the role part: %w", errBadRequest, err)
	}
	defer p.Close()
	if p.FormName() != "role" {
		return nil, fmt.Errorf("%w: the first part is %q, want \"role\"", errBadRequest, p.FormName())
	}
	role, err := io.ReadAll(io.LimitReader(p, a.cfg.MaxRole+1))
	if err != nil {
		return nil, fmt.Errorf("read the role part: %w", err)
	}
	if int64(len(role)) > a.cfg.MaxRole {
		return nil, fmt.Errorf("%w: role over %d bytes", errTooLarge, a.cfg.MaxRole)
	}
	return role, nil
}

// receiveFiles streams up to n "file" parts into dir, together at most
// want bytes: the role's new targets bound what may be uploaded.
func receiveFiles(mr *multipart.Reader, dir string, n int, want int64) ([]string, error) {
	var files []string
	left := want
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: read a file part: %w", errBadRequest, err)
		}
		if p.FormName() != "file" {
			p.Close()
			return nil, fmt.Errorf("%w: unexpected part %q, want \"file\"", errBadRequest, p.FormName())
		}
		if len(files) == n {
			p.Close()
			return nil, fmt.Errorf("upload %w: more than the %d files the role adds", repo.ErrRefused, n)
		}
		name := filepath.Join(dir, strconv.Itoa(len(files)))
		got, err := saveFile(name, p, left)
		p.Close()
		if err != nil {
			return nil, err
		}
		left -= got
		files = append(files, name)
	}
}

// saveFile copies at most limit bytes of r to a new file; more is errTooLarge.
func saveFile(name string, r io.Reader, limit int64) (int64, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("receive file: %w", err)
	}
	if n > limit {
		return n, fmt.Errorf("%w: files larger than the role's new targets", errTooLarge)
	}
	return n, nil
}

// stallBody extends the connection's read deadline as long as the body
// keeps arriving: an upload may take longer than the server's ReadTimeout,
// but never stalls for more than stall (a slowloris upload is cut).
type stallBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	stall    time.Duration
	extended time.Time
}

func (b *stallBody) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(b.extended) > b.stall/8 {
		_ = b.rc.SetReadDeadline(now.Add(b.stall))
		b.extended = now
	}
	return b.ReadCloser.Read(p)
}
