// Package ext stands in for Traefik's nested module github.com/traefik/traefik/dynamic/ext,
// which Traefik's go.mod replaces with a directory that the module zip does not contain. In
// open-source Traefik it is exactly this: empty extension points of the dynamic configuration.
package ext

// HTTP is inlined into Traefik's dynamic HTTP configuration.
type HTTP struct{}

// Router is inlined into Traefik's router configuration.
type Router struct{}

// RouterIng is the router extension of Traefik's Kubernetes Ingress annotations.
type RouterIng struct{}

// ToRouter converts the Ingress annotation extension into a router extension.
func (RouterIng) ToRouter() Router { return Router{} }
