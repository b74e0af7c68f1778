package headerssetter

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/confmap"
)

func ptr(s string) *string { return &s }

func withAuth(ctx context.Context, v string) context.Context {
	return client.NewContext(ctx, client.Info{
		Metadata: client.NewMetadata(map[string][]string{"authorization": {v}}),
	})
}

func TestConfigFromYAMLKeys(t *testing.T) {
	conf := confmap.NewFromStringMap(map[string]any{
		"headers": []any{
			map[string]any{"key": "Authorization", "from_context": "authorization", "action": "upsert"},
			map[string]any{"key": "X-Site", "value": "lab", "action": "insert"},
		},
	})
	cfg := &Config{}
	if err := conf.Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if *cfg.Headers[0].FromContext != "authorization" || *cfg.Headers[1].Value != "lab" {
		t.Fatalf("unexpected config %+v", cfg)
	}
}

func TestValidateRejects(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no headers":   {},
		"no key":       {Headers: []HeaderConfig{{Value: ptr("v")}}},
		"no source":    {Headers: []HeaderConfig{{Key: ptr("A"), Action: Upsert}}},
		"two sources":  {Headers: []HeaderConfig{{Key: ptr("A"), Action: Upsert, Value: ptr("v"), FromContext: ptr("a")}}},
		"unknown verb": {Headers: []HeaderConfig{{Key: ptr("A"), Action: "replace", Value: ptr("v")}}},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: validated", name)
		}
	}
}

func TestRoundTripperActions(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
	}))
	defer srv.Close()

	s := &setter{headers: normalize([]HeaderConfig{
		{Key: ptr("Authorization"), FromContext: ptr("authorization")}, // default action: upsert
		{Key: ptr("X-Insert"), Action: Insert, Value: ptr("new")},
		{Key: ptr("X-Update"), Action: Update, Value: ptr("new")},
		{Key: ptr("X-Absent-Update"), Action: Update, Value: ptr("new")},
		{Key: ptr("X-Delete"), Action: Delete},
		{Key: ptr("X-Default"), FromContext: ptr("missing"), DefaultValue: ptr("fallback")},
	})}
	rt, err := s.RoundTripper(http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(withAuth(context.Background(), "Bearer abc"), http.MethodPost, srv.URL, nil)
	req.Header.Set("X-Insert", "old")
	req.Header.Set("X-Update", "old")
	req.Header.Set("X-Delete", "old")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	want := map[string]string{
		"Authorization": "Bearer abc", "X-Insert": "old", "X-Update": "new",
		"X-Absent-Update": "", "X-Delete": "", "X-Default": "fallback",
	}
	for k, v := range want {
		if got.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, got.Get(k), v)
		}
	}
	if req.Header.Get("X-Update") != "old" || req.Header.Get("Authorization") != "" {
		t.Error("the caller's request was modified")
	}
}

func TestPerRPCCredentials(t *testing.T) {
	s := &setter{headers: normalize([]HeaderConfig{
		{Key: ptr("Authorization"), FromContext: ptr("authorization")},
		{Key: ptr("X-Gone"), Action: Delete},
	})}
	creds, err := s.PerRPCCredentials()
	if err != nil {
		t.Fatal(err)
	}
	md, err := creds.GetRequestMetadata(withAuth(context.Background(), "Bearer xyz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(md) != 1 || md["authorization"] != "Bearer xyz" {
		t.Fatalf("metadata %v", md)
	}
	md, _ = creds.GetRequestMetadata(context.Background())
	if len(md) != 0 {
		t.Fatalf("metadata without a token: %v", md)
	}
}
