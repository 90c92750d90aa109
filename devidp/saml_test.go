package devidp_test

import (
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/groupgate/groupgate/devidp"
)

func TestSAMLProvider(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	idp, err := devidp.NewSAML(srv.URL+"/idp", devidp.SAMLConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/idp/", idp)

	t.Run("the metadata names the entity, both SSO bindings and the signing certificate", func(t *testing.T) {
		resp, err := http.Get(idp.MetadataURL())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var md struct {
			EntityID string `xml:"entityID,attr"`
			IDP      struct {
				SSO []struct {
					Binding  string `xml:"Binding,attr"`
					Location string `xml:"Location,attr"`
				} `xml:"SingleSignOnService"`
				Cert string `xml:"KeyDescriptor>KeyInfo>X509Data>X509Certificate"`
			} `xml:"IDPSSODescriptor"`
		}
		if err := xml.NewDecoder(resp.Body).Decode(&md); err != nil {
			t.Fatal(err)
		}
		bindings := map[string]string{}
		for _, s := range md.IDP.SSO {
			bindings[s.Binding] = s.Location
		}
		if md.EntityID != idp.MetadataURL() || md.IDP.Cert == "" ||
			bindings["urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"] != srv.URL+"/idp/sso" ||
			bindings["urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"] != srv.URL+"/idp/sso" {
			t.Fatalf("metadata = %+v", md)
		}
	})

	t.Run("a wrong password shows the form again with 401", func(t *testing.T) {
		resp, err := http.PostForm(srv.URL+"/idp/idp-initiated?sp="+url.QueryEscape("https://sp.example.com/metadata"),
			url.Values{"username": {"alice"}, "password": {"nope"}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "Wrong username or password") {
			t.Fatalf("answer %d: %s", resp.StatusCode, b)
		}
	})

	t.Run("a base URL with a trailing slash is refused", func(t *testing.T) {
		if _, err := devidp.NewSAML(srv.URL+"/idp/", devidp.SAMLConfig{}); err == nil {
			t.Fatal("accepted")
		}
	})
}
