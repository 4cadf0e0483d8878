package lktest

import "net/http"

// WithTransport makes the client send its requests through rt, for example one that trusts a
// test certificate authority or speaks HTTP/2. It returns the client.
func (c *Client) WithTransport(rt http.RoundTripper) *Client {
	c.hc.Transport = rt
	return c
}
