package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
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
	role, ro, err := a.readHead(mr)
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
	res, err := a.publish(r.Context(), app, role, files, ro)
	if err != nil {
		return res, err
	}
	tok, _ := r.Context().Value(tokenKey{}).(Token)
	for _, e := range res.Published {
		a.log.Info("admin: published", "app", app, "path", e.Path, "sha256", e.SHA256, "role_version", u.Version,
			"keyids", u.KeyIDs, "token", tok.ID, "remote", clientIP(r))
	}
	if len(res.Published) == 0 { // a re-signed role, or a new minimum safe version
		a.log.Info("admin: role published", "app", app, "role_version", u.Version, "keyids", u.KeyIDs,
			"token", tok.ID, "remote", clientIP(r))
	}
	if ro != nil {
		a.log.Info("admin: rollout", "app", app, "action", "publish", "version", uploadVersion(u), "channel", ro.Channel,
			"basis_points", ro.BasisPoints, "token", tok.ID, "remote", clientIP(r))
	}
	return res, nil
}

// readHead reads the parts before the files: the optional rollout fields
// "channel" and "basis_points" (each at most once), then the role. A
// rollout decision is returned when either field is given: the channel
// defaults to rollout.DefaultChannel, the share to rollout.Full.
func (a *admin) readHead(mr *multipart.Reader) ([]byte, *rollout.Entry, error) {
	fields := map[string]string{}
	for {
		p, err := mr.NextPart()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: read the role part: %w", errBadRequest, err)
		}
		name := p.FormName()
		if name == "role" {
			role, err := a.readRole(p)
			if err != nil {
				return nil, nil, err
			}
			e, err := uploadRollout(fields)
			return role, e, err
		}
		if name != "channel" && name != "basis_points" || fields[name] != "" {
			p.Close()
			return nil, nil, fmt.Errorf("%w: part %q before the role, want \"channel\", \"basis_points\" (each once) or \"role\"", errBadRequest, name)
		}
		v, err := io.ReadAll(io.LimitReader(p, maxField+1))
		p.Close()
		switch {
		case err != nil:
			return nil, nil, fmt.Errorf("read the %s part: %w", name, err)
		case len(v) > maxField:
			return nil, nil, fmt.Errorf("%w: part %s over %d bytes", errTooLarge, name, maxField)
		case len(v) == 0:
			return nil, nil, fmt.Errorf("%w: part %s is empty", errBadRequest, name)
		}
		fields[name] = string(v)
	}
}

// maxField bounds a form field of an upload.
const maxField = 64

// uploadRollout is the rollout decision that the fields of an upload ask
// for, nil when they ask for none.
func uploadRollout(fields map[string]string) (*rollout.Entry, error) {
	if len(fields) == 0 {
		return nil, nil
	}
	e := &rollout.Entry{Channel: rollout.DefaultChannel, BasisPoints: rollout.Full, State: rollout.Active}
	if c, ok := fields["channel"]; ok {
		if err := release.ValidChannel(c); err != nil {
			return nil, fmt.Errorf("%w: channel %q: %v", errBadRequest, c, err)
		}
		e.Channel = c
	}
	if s, ok := fields["basis_points"]; ok {
		bp, err := strconv.Atoi(s)
		if err != nil || bp < 0 || bp > rollout.Full || strconv.Itoa(bp) != s {
			return nil, fmt.Errorf("%w: basis_points %q is not an integer within 0..%d", errBadRequest, s, rollout.Full)
		}
		e.BasisPoints = bp
	}
	return e, nil
}

func (a *admin) readRole(p *multipart.Part) ([]byte, error) {
	defer p.Close()
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

// publish publishes an upload; with a rollout decision, the decision is
// signed in the same commit as the release.
func (a *admin) publish(ctx context.Context, app string, role []byte, files []string, ro *rollout.Entry) (repo.Result, error) {
	if ro == nil {
		return a.cfg.Repo.PublishUpload(ctx, app, role, files)
	}
	return a.cfg.Repo.PublishUploadWith(ctx, app, role, files, repo.UploadOptions{Rollout: ro})
}

// uploadVersion is the release version of an upload's new targets.
func uploadVersion(u *repo.Upload) string {
	if len(u.New) == 0 {
		return ""
	}
	return u.New[0].Version
}
