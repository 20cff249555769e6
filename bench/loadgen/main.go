// Command loadgen posts audit events to ingest as fast as its keep-alive connections allow.
//
// It is the max-speed half of bench/load.py compiled: the generator shares the 2-core machine
// with the pipeline it measures, and the Python one spent 100-160 us of CPU per single-event
// request, a tenth of the machine. Same bodies (bench/load.py's _Bodies), same connection rules
// (bench/load.py's Poster), same counts. bench/native_load.py builds and drives it:
//
//	stdout: "ready"                    once the connections' state is built
//	stdin:  "<start>"                  CLOCK_MONOTONIC seconds at which every connection starts
//	stdout: "probe <t> <id> <t> <id>"  accepted probes (send time, event id), every 0.2 s per connection
//	stdout: "result {json}"            the counts, once every connection has finished
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

const (
	idleLimit      = 2 * time.Second  // a connection idle longer is replaced (nginx's keepalive_timeout is 30 s)
	requestTimeout = 60 * time.Second // per request
	probeFlush     = 200 * time.Millisecond
	refusedPause   = 50 * time.Millisecond // after a refused or broken request: do not spin
)

var errNoResponse = errors.New("connection closed without a response")

// clock reads CLOCK_MONOTONIC, the clock of Python's time.monotonic(), from one raw reading and
// Go's own monotonic time since: one system call per run instead of one per request.
type clock struct {
	base  float64
	since time.Time
}

func newClock() clock {
	var ts syscall.Timespec
	const clockMonotonic = 1
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		fail(fmt.Errorf("clock_gettime: %w", errno))
	}
	return clock{base: float64(ts.Sec) + float64(ts.Nsec)/1e9, since: time.Now()}
}

func (c clock) now() float64 { return c.base + time.Since(c.since).Seconds() }

type spec struct {
	url        string
	eventType  string
	batch      int
	conns      int
	maxEvents  int
	maxSeconds float64
	probeEvery int
}

type result struct {
	Requests         int            `json:"requests"`
	EventsSent       int            `json:"events_sent"`
	EventsAccepted   int            `json:"events_accepted"`
	Statuses         map[string]int `json:"statuses"`
	ConnectionErrors int            `json:"connection_errors"`
	FirstSend        *float64       `json:"first_send"`
	LastDone         *float64       `json:"last_done"`
	CPUSeconds       float64        `json:"cpu_s"`
}

func main() {
	var s spec
	flag.StringVar(&s.url, "url", "", "ingest's base URL")
	flag.StringVar(&s.eventType, "type", "", "the run's event type")
	flag.IntVar(&s.batch, "batch", 1, "events per POST")
	flag.IntVar(&s.conns, "conns", 1, "keep-alive connections")
	flag.IntVar(&s.maxEvents, "max-events", 1, "events in all")
	flag.Float64Var(&s.maxSeconds, "max-seconds", 1, "deadline after the start")
	flag.IntVar(&s.probeEvery, "probe-every", 0, "every n-th event of a connection is a probe; 0: none")
	flag.Parse()
	if s.url == "" || s.eventType == "" || s.batch < 1 || s.conns < 1 || s.maxEvents < 1 || s.maxSeconds <= 0 || s.probeEvery < 0 {
		fail(errors.New("invalid arguments: -url and -type are required; counts must be positive"))
	}
	address, path, err := target(s.url)
	if err != nil {
		fail(err)
	}
	out := &parentPipe{w: bufio.NewWriter(os.Stdout)}
	clk := newClock()
	out.line("ready")
	start, err := readStart(os.Stdin)
	if err != nil {
		fail(err)
	}
	time.Sleep(time.Duration((start - clk.now()) * float64(time.Second)))
	cpuBefore := cpuSeconds()

	parts := make([]result, s.conns)
	var wg sync.WaitGroup
	for c := range s.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[c] = drive(s, c, address, path, start, clk, out)
		}()
	}
	wg.Wait()

	total := result{Statuses: map[string]int{}}
	for _, p := range parts {
		total.Requests += p.Requests
		total.EventsSent += p.EventsSent
		total.EventsAccepted += p.EventsAccepted
		total.ConnectionErrors += p.ConnectionErrors
		for status, n := range p.Statuses {
			total.Statuses[status] += n
		}
		if p.FirstSend != nil && (total.FirstSend == nil || *p.FirstSend < *total.FirstSend) {
			total.FirstSend = p.FirstSend
		}
		if p.LastDone != nil && (total.LastDone == nil || *p.LastDone > *total.LastDone) {
			total.LastDone = p.LastDone
		}
	}
	total.CPUSeconds = cpuSeconds() - cpuBefore
	encoded, err := json.Marshal(total)
	if err != nil {
		fail(err)
	}
	out.line("result " + string(encoded))
}

// drive posts one connection's share: ceil(maxEvents / conns) events, or until the deadline.
func drive(s spec, conn int, address, path string, start float64, clk clock, out *parentPipe) result {
	r := result{Statuses: map[string]int{}}
	p := newPoster(address, path)
	defer p.close()
	b := newBodies(s.eventType, conn)
	mine := (s.maxEvents + s.conns - 1) / s.conns
	end := start + s.maxSeconds
	var unsent []probe
	lastFlush := start
	for r.EventsSent < mine {
		sentAt := clk.now()
		if sentAt >= end {
			break
		}
		count := min(s.batch, mine-r.EventsSent)
		body, ids := b.build(count)
		if r.FirstSend == nil {
			r.FirstSend = &sentAt
		}
		r.Requests++
		sent := r.EventsSent
		r.EventsSent += count
		status, err := p.post(body)
		if err != nil {
			status = 0
			r.ConnectionErrors++
		}
		done := clk.now()
		r.LastDone = &done
		r.Statuses[strconv.Itoa(status)]++
		if status == 202 {
			r.EventsAccepted += count
			for i, id := range ids {
				if s.probeEvery > 0 && (sent+i)%s.probeEvery == 0 {
					unsent = append(unsent, probe{sentAt, id})
				}
			}
		} else {
			time.Sleep(refusedPause)
		}
		if len(unsent) > 0 && done-lastFlush >= probeFlush.Seconds() {
			out.probes(unsent)
			unsent = unsent[:0]
			lastFlush = done
		}
	}
	if len(unsent) > 0 {
		out.probes(unsent)
	}
	return r
}

// -- bodies --------------------------------------------------------------------------------------

// bodies builds request bodies from a template: a unique event_id per event, 64 sessions per
// connection; byte for byte the shape of bench/load.py's _Bodies.
type bodies struct {
	prefix []byte
	conn   int
	seq    int
	buf    []byte
	ids    []string
}

func newBodies(eventType string, conn int) *bodies {
	quotedType, _ := json.Marshal(eventType)
	prefix := `{"type":` + string(quotedType) + `,"server":"bench-mcp","method":"tools/call","tool":"search",` +
		`"status":"ok","duration_ms":12.5,"attributes":{"client":"bench","conn":` + strconv.Itoa(conn) + `,"seq":`
	return &bodies{prefix: []byte(prefix), conn: conn}
}

func (b *bodies) build(count int) ([]byte, []string) {
	stamp := time.Now().UTC().Format("2006-01-02T15:04:05.000000") + "Z"
	b.buf = b.buf[:0]
	b.ids = b.ids[:0]
	if count > 1 {
		b.buf = append(b.buf, '[')
	}
	for i := range count {
		if i > 0 {
			b.buf = append(b.buf, ',')
		}
		b.seq++
		id := uuid4()
		b.ids = append(b.ids, id)
		b.buf = append(b.buf, b.prefix...)
		b.buf = strconv.AppendInt(b.buf, int64(b.seq), 10)
		b.buf = append(b.buf, `},"event_id":"`...)
		b.buf = append(b.buf, id...)
		b.buf = append(b.buf, `","timestamp":"`...)
		b.buf = append(b.buf, stamp...)
		b.buf = append(b.buf, `","session_id":"bench-`...)
		b.buf = strconv.AppendInt(b.buf, int64(b.conn), 10)
		b.buf = append(b.buf, '-')
		b.buf = strconv.AppendInt(b.buf, int64(b.seq%64), 10)
		b.buf = append(b.buf, `"}`...)
	}
	if count > 1 {
		b.buf = append(b.buf, ']')
	}
	return b.buf, b.ids
}

// uuid4 is a random (version 4, RFC 9562 variant) UUID in its canonical text form. math/rand/v2's
// global source is ChaCha8, seeded per process from the OS: unpredictable enough for test ids.
func uuid4() string {
	var raw [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		raw[i] = byte(hi >> (56 - 8*i))
		raw[8+i] = byte(lo >> (56 - 8*i))
	}
	raw[6] = raw[6]&0x0f | 0x40
	raw[8] = raw[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	var text [36]byte
	j := 0
	for i, v := range raw {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			text[j] = '-'
			j++
		}
		text[j], text[j+1] = hex[v>>4], hex[v&0x0f]
		j += 2
	}
	return string(text[:])
}

// -- HTTP/1.1 -------------------------------------------------------------------------------------

// poster is one keep-alive HTTP/1.1 connection, reopened when the server closes it; the rules of
// bench/load.py's Poster. Ingest answers with Content-Length, never chunked.
type poster struct {
	address  string
	head     []byte
	conn     net.Conn
	reader   *bufio.Reader
	request  []byte
	lastUsed time.Time
}

func newPoster(address, path string) *poster {
	head := "POST " + path + " HTTP/1.1\r\nHost: " + address + "\r\nContent-Type: application/json\r\nContent-Length: "
	return &poster{address: address, head: []byte(head)}
}

// post returns the HTTP status. A request that a reused connection lost before any answer is sent
// once more on a new connection: the server never saw it.
func (p *poster) post(body []byte) (int, error) {
	if p.conn != nil && time.Since(p.lastUsed) > idleLimit {
		p.close()
	}
	p.request = append(append(append(append(p.request[:0], p.head...), strconv.Itoa(len(body))...), "\r\n\r\n"...), body...)
	reused := p.conn != nil
	status, keep, err := p.exchange()
	if err != nil {
		p.close()
		if !reused || !(errors.Is(err, errNoResponse) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
			return 0, err
		}
		if status, keep, err = p.exchange(); err != nil {
			p.close()
			return 0, err
		}
	}
	p.lastUsed = time.Now()
	if !keep {
		p.close()
	}
	return status, nil
}

func (p *poster) exchange() (int, bool, error) {
	if p.conn == nil {
		conn, err := net.DialTimeout("tcp", p.address, requestTimeout) // TCP_NODELAY is Go's default
		if err != nil {
			return 0, false, err
		}
		p.conn = conn
		if p.reader == nil {
			p.reader = bufio.NewReaderSize(conn, 16*1024)
		} else {
			p.reader.Reset(conn)
		}
	}
	if err := p.conn.SetDeadline(time.Now().Add(requestTimeout)); err != nil {
		return 0, false, err
	}
	if _, err := p.conn.Write(p.request); err != nil {
		return 0, false, err
	}
	return readResponse(p.reader)
}

func (p *poster) close() {
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
}

func readResponse(r *bufio.Reader) (int, bool, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return 0, false, errNoResponse
		}
		return 0, false, fmt.Errorf("reading the status line: %w", err)
	}
	fields := bytes.SplitN(bytes.TrimRight(line, "\r\n"), []byte(" "), 3)
	if len(fields) < 2 || !bytes.HasPrefix(fields[0], []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("not an HTTP status line: %q", line)
	}
	status, err := strconv.Atoi(string(fields[1]))
	if err != nil {
		return 0, false, fmt.Errorf("not an HTTP status line: %q", line)
	}
	keep := bytes.Equal(fields[0], []byte("HTTP/1.1"))
	length := -1
	for {
		line, err = r.ReadSlice('\n')
		if err != nil {
			return 0, false, fmt.Errorf("connection closed inside the response headers: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		name, value = bytes.ToLower(bytes.TrimSpace(name)), bytes.ToLower(bytes.TrimSpace(value))
		switch string(name) {
		case "content-length":
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case "connection":
			if string(value) == "close" {
				keep = false
			} else if string(value) == "keep-alive" {
				keep = true
			}
		case "transfer-encoding":
			return 0, false, errors.New("chunked responses are not read by this client")
		}
	}
	if length < 0 {
		return 0, false, errors.New("response without Content-Length")
	}
	if _, err := r.Discard(length); err != nil {
		return 0, false, fmt.Errorf("connection closed inside the response body: %w", err)
	}
	return status, keep, nil
}

// -- the parent's side ----------------------------------------------------------------------------

type probe struct {
	sentAt float64
	id     string
}

// parentPipe serialises the lines to the parent (ready, probes, result) from every connection.
type parentPipe struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (o *parentPipe) line(text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.w.WriteString(text)
	o.w.WriteByte('\n')
	if err := o.w.Flush(); err != nil {
		fail(fmt.Errorf("writing to the parent: %w", err))
	}
}

func (o *parentPipe) probes(probes []probe) {
	var b []byte
	b = append(b, "probe"...)
	for _, p := range probes {
		b = append(b, ' ')
		b = strconv.AppendFloat(b, p.sentAt, 'f', 6, 64)
		b = append(b, ' ')
		b = append(b, p.id...)
	}
	o.line(string(b))
}

func target(raw string) (string, string, error) {
	parsed, err := url.Parse(raw)
	if err != nil || parsed.Scheme != "http" || parsed.Hostname() == "" {
		return "", "", fmt.Errorf("not an http:// URL: %q", raw)
	}
	port := parsed.Port()
	if port == "" {
		port = "80"
	}
	path := parsed.Path
	for len(path) > 0 && path[len(path)-1] == '/' {
		path = path[:len(path)-1]
	}
	return net.JoinHostPort(parsed.Hostname(), port), path + "/events", nil
}

func readStart(in io.Reader) (float64, error) {
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("reading the start time from the parent: %w", err)
	}
	start, err := strconv.ParseFloat(string(bytes.TrimSpace([]byte(line))), 64)
	if err != nil {
		return 0, fmt.Errorf("start time %q: %w", line, err)
	}
	return start, nil
}

func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		fail(err)
	}
	return float64(usage.Utime.Sec+usage.Stime.Sec) + float64(usage.Utime.Usec+usage.Stime.Usec)/1e6
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(2)
}
