// Package headerssetter is a stand-in for the contrib collector's headers_setter extension
// (github.com/open-telemetry/opentelemetry-collector-contrib/extension/headerssetterextension),
// written for shellspan's collector build because the module registry this project builds from
// does not serve that module. It registers the same component type ("headers_setter") and accepts
// the same configuration keys for the subset shellspan uses, so collector_config/*.yaml run
// unchanged on the contrib distribution, where the real extension is used instead.
//
// Supported per header: key, exactly one of value / from_context, default_value, and action
// (insert, update, upsert; delete on HTTP only). from_context reads the client metadata that a
// receiver with include_metadata: true stored (for example the incoming Authorization header);
// the batch processor keeps it only for keys listed in its metadata_keys.
package headerssetter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"google.golang.org/grpc/credentials"
)

var componentType = component.MustNewType("headers_setter")

// Action says what to do when the header is (or is not) already on the outgoing request.
type Action string

const (
	Insert Action = "insert" // set only when the request does not have the header yet
	Update Action = "update" // set only when the request already has the header
	Upsert Action = "upsert" // always set (the default)
	Delete Action = "delete" // remove the header
)

// HeaderConfig is one header rule.
type HeaderConfig struct {
	Key          *string `mapstructure:"key"`
	Action       Action  `mapstructure:"action"`
	Value        *string `mapstructure:"value"`
	FromContext  *string `mapstructure:"from_context"`
	DefaultValue *string `mapstructure:"default_value"`
}

// Config is the extension's configuration.
type Config struct {
	Headers []HeaderConfig `mapstructure:"headers"`
}

// Validate rejects configurations the contrib extension also rejects.
func (c *Config) Validate() error {
	if len(c.Headers) == 0 {
		return errors.New("missing headers configuration")
	}
	for i, h := range c.Headers {
		if h.Key == nil || *h.Key == "" {
			return fmt.Errorf("headers[%d]: missing header name", i)
		}
		switch h.Action {
		case Insert, Update, Upsert:
			if h.Value == nil && h.FromContext == nil {
				return fmt.Errorf("headers[%d]: missing header source, must be 'from_context' or 'value'", i)
			}
			if h.Value != nil && h.FromContext != nil {
				return fmt.Errorf("headers[%d]: invalid header source, must either 'from_context' or 'value'", i)
			}
		case Delete:
		default:
			return fmt.Errorf("headers[%d]: unknown action %q (insert, update, upsert, delete)", i, h.Action)
		}
	}
	return nil
}

// NewFactory returns the extension factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(
		componentType,
		func() component.Config { return &Config{} },
		func(_ context.Context, _ extension.Settings, cfg component.Config) (extension.Extension, error) {
			return &setter{headers: normalize(cfg.(*Config).Headers)}, nil
		},
		component.StabilityLevelBeta,
	)
}

type rule struct {
	key          string
	action       Action
	value        string
	fromContext  string
	defaultValue string
	static       bool
}

func normalize(hs []HeaderConfig) []rule {
	out := make([]rule, 0, len(hs))
	for _, h := range hs {
		r := rule{key: *h.Key, action: h.Action}
		if r.action == "" {
			r.action = Upsert
		}
		if h.Value != nil {
			r.value, r.static = *h.Value, true
		}
		if h.FromContext != nil {
			r.fromContext = *h.FromContext
		}
		if h.DefaultValue != nil {
			r.defaultValue = *h.DefaultValue
		}
		out = append(out, r)
	}
	return out
}

// valueFor returns the header value for this request's context ("" means none).
func (r rule) valueFor(ctx context.Context) string {
	if r.static {
		return r.value
	}
	if vs := client.FromContext(ctx).Metadata.Get(r.fromContext); len(vs) > 0 && vs[0] != "" {
		return vs[0]
	}
	return r.defaultValue
}

type setter struct {
	component.StartFunc
	component.ShutdownFunc
	headers []rule
}

var (
	_ extensionauth.HTTPClient = (*setter)(nil)
	_ extensionauth.GRPCClient = (*setter)(nil)
)

// RoundTripper sets the configured headers on every outgoing HTTP request.
func (s *setter) RoundTripper(base http.RoundTripper) (http.RoundTripper, error) {
	return roundTripper{base: base, headers: s.headers}, nil
}

type roundTripper struct {
	base    http.RoundTripper
	headers []rule
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context()) // a RoundTripper must not modify the caller's request
	for _, r := range rt.headers {
		_, present := req.Header[http.CanonicalHeaderKey(r.key)]
		switch r.action {
		case Delete:
			req.Header.Del(r.key)
			continue
		case Insert:
			if present {
				continue
			}
		case Update:
			if !present {
				continue
			}
		}
		if v := r.valueFor(req.Context()); v != "" {
			req.Header.Set(r.key, v)
		}
	}
	return rt.base.RoundTrip(req)
}

// PerRPCCredentials sets the configured headers as gRPC metadata on every outgoing call.
func (s *setter) PerRPCCredentials() (credentials.PerRPCCredentials, error) {
	return perRPC{headers: s.headers}, nil
}

type perRPC struct{ headers []rule }

func (p perRPC) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	md := make(map[string]string, len(p.headers))
	for _, r := range p.headers {
		if r.action == Delete {
			continue
		}
		if v := r.valueFor(ctx); v != "" {
			md[strings.ToLower(r.key)] = v
		}
	}
	return md, nil
}

func (perRPC) RequireTransportSecurity() bool { return false }
