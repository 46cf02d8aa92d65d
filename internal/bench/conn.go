// Package bench is authd's load generator: a lean HTTP/1.1 client that
// keeps one connection per worker, closed-loop and open-loop runners that
// time every request, and the statistics and process readings
// (peak RSS, CPU time) that cmd/authd-bench reports.
//
// The client is deliberately small. The generator shares the machine's
// CPUs with authd, and every microsecond it spends per request is taken
// from authd and lowers the HTTP bound (/healthz) and every other figure
// alike; a heavy client would also flatter the ratios, since it adds the
// same cost to a cheap request and an expensive one.
package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// Request is a complete HTTP/1.1 request, ready to write.
type Request []byte

// NewRequest formats a request for host. headers are "Name: value" lines;
// a body gets Content-Type: application/json and its Content-Length.
func NewRequest(method, host, path string, body string, headers ...string) Request {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: authd-bench\r\n", method, path, host)
	for _, h := range headers {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	if body != "" || method == "POST" {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.Bytes()
}

// Conn is one keep-alive HTTP/1.1 connection. It is not safe for
// concurrent use: each worker owns one.
type Conn struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
	body []byte
	// Dials counts the connections made, the first included: a server
	// that closes connections shows up here.
	Dials int
}

// Dial connects to addr (host:port).
func Dial(addr string) (*Conn, error) {
	c := &Conn{addr: addr}
	return c, c.dial()
}

func (c *Conn) dial() error {
	nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c.c = nc
	c.r = bufio.NewReaderSize(nc, 4096)
	c.Dials++
	return nil
}

// Close closes the connection.
func (c *Conn) Close() error {
	if c.c == nil {
		return nil
	}
	return c.c.Close()
}

// Do sends req and reads the response. The body it returns is valid until
// the next call. A connection the server closed is dialled again, and an
// error leaves the Conn ready for another attempt.
func (c *Conn) Do(req Request) (status int, body []byte, err error) {
	if c.c == nil {
		if err := c.dial(); err != nil {
			return 0, nil, err
		}
	}
	status, body, keep, err := c.roundTrip(req)
	if err != nil || !keep {
		c.c.Close()
		c.c = nil
	}
	return status, body, err
}

var errMalformed = errors.New("bench: malformed response")

func (c *Conn) roundTrip(req Request) (status int, body []byte, keep bool, err error) {
	c.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.c.Write(req); err != nil {
		return 0, nil, false, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, nil, false, err
	}
	// HTTP/1.1 200 OK
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, false, errMalformed
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, errMalformed
	}
	length, chunked := -1, false
	keep = true
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, nil, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, nil, false, errMalformed
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, nil, false, errMalformed
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	c.body = c.body[:0]
	switch {
	case chunked:
		for {
			line, err := c.r.ReadSlice('\n')
			if err != nil {
				return 0, nil, false, err
			}
			n, err := strconv.ParseInt(string(bytes.TrimRight(line, "\r\n")), 16, 32)
			if err != nil || n < 0 {
				return 0, nil, false, errMalformed
			}
			if n == 0 {
				if _, err := c.r.ReadSlice('\n'); err != nil { // the last CRLF (no trailers)
					return 0, nil, false, err
				}
				break
			}
			if c.body, err = readN(c.r, c.body, int(n)+2); err != nil {
				return 0, nil, false, err
			}
			c.body = c.body[:len(c.body)-2]
		}
	case length >= 0:
		if c.body, err = readN(c.r, c.body, length); err != nil {
			return 0, nil, false, err
		}
	default:
		return 0, nil, false, errMalformed
	}
	return status, c.body, keep, nil
}

// readN appends n bytes of r to buf.
func readN(r io.Reader, buf []byte, n int) ([]byte, error) {
	start := len(buf)
	if cap(buf)-start < n {
		grown := make([]byte, start, start+n)
		copy(grown, buf)
		buf = grown
	}
	buf = buf[:start+n]
	_, err := io.ReadFull(r, buf[start:])
	return buf, err
}
