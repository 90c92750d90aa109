package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/linker"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	_ "github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1"
)

// The published Buf Schema Registry protos groupgate is wire-identical to:
// the proto/ tree of the github.com/bufbuild/buf Go module at this version.
const (
	bsrModule  = "github.com/bufbuild/buf"
	bsrVersion = "v1.61.0"
	bsrPackage = "buf.alpha.registry.v1alpha1"
)

// bsrProtoDir returns the proto/ directory of the published buf module,
// downloading it through the Go module proxy when the cache lacks it.
func bsrProtoDir(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", bsrModule+"@"+bsrVersion)
	cmd.Dir = t.TempDir() // outside this module: no go.mod entry needed
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s@%s: %v\n%s", bsrModule, bsrVersion, err, out)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go mod download %s@%s: %v %s", bsrModule, bsrVersion, err, out)
	}
	return filepath.Join(m.Dir, "proto")
}

// TestWireIdentityWithPublishedBSRProtos compares, field by field, every
// message, enum and service of buf.alpha.registry.v1alpha1 that groupgate
// generates with the BSR's published definition: a binary client built from
// the BSR's protos must read exactly what groupgate writes. groupgate may
// serve fewer RPCs than the BSR, never different ones, and adds nothing to
// the package (its own services are groupgate.v1).
func TestWireIdentityWithPublishedBSRProtos(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads the published protos")
	}
	var ours []protoreflect.FileDescriptor
	protoregistry.GlobalFiles.RangeFilesByPackage(bsrPackage, func(fd protoreflect.FileDescriptor) bool {
		ours = append(ours, fd)
		return true
	})
	if len(ours) == 0 {
		t.Fatal("no generated files of " + bsrPackage)
	}
	theirs := publishedFiles(t)
	find := func(name protoreflect.FullName) protoreflect.Descriptor {
		for _, f := range theirs {
			if d := f.FindDescriptorByName(name); d != nil {
				return d
			}
		}
		return nil
	}

	for _, fd := range ours {
		compareDecls(t, fd.Messages(), fd.Enums(), find)
		for i := 0; i < fd.Services().Len(); i++ {
			ours := fd.Services().Get(i)
			theirs, ok := find(ours.FullName()).(protoreflect.ServiceDescriptor)
			if !ok {
				t.Errorf("service %s: not in the published protos", ours.FullName())
				continue
			}
			for j := 0; j < ours.Methods().Len(); j++ {
				m := ours.Methods().Get(j)
				p := theirs.Methods().ByName(m.Name())
				if p == nil {
					t.Errorf("rpc %s: not in the published protos", m.FullName())
					continue
				}
				if got, want := methodSig(m), methodSig(p); got != want {
					t.Errorf("rpc %s:\n ours      %s\n published %s", m.FullName(), got, want)
				}
			}
		}
	}
}

// publishedFiles compiles every published file of the BSR's package.
func publishedFiles(t *testing.T) linker.Files {
	t.Helper()
	dir := bsrProtoDir(t)
	// Every published file of the package: a declaration of ours may live
	// in another file upstream.
	rel := strings.ReplaceAll(bsrPackage, ".", "/")
	entries, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".proto") {
			paths = append(paths, rel+"/"+e.Name())
		}
	}
	comp := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: []string{dir}}),
	}
	files, err := comp.Compile(context.Background(), paths...)
	if err != nil {
		t.Fatalf("compile the published protos: %v", err)
	}
	return files
}

// Every RPC of the BSR's package that groupgate does not serve answers
// Connect unimplemented, whoever calls (no credentials, a token, a session
// cookie), so that no caller is sent elsewhere (401, 404, the upstream).
func TestEveryUnservedBSRRPCAnswersUnimplemented(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads the published protos")
	}
	e := newAPIEnv(t)
	u := e.user("alice")
	tok := e.token(u, time.Time{})
	cookie := e.cookieFor(u)
	callers := map[string][]string{
		"anonymous": nil,
		"token":     {"Authorization: Bearer " + tok},
		"cookie":    {cookie, "Origin: " + e.srv.URL},
	}
	var unserved, served int
	for _, f := range publishedFiles(t) {
		if f.Package() != bsrPackage {
			continue
		}
		for i := 0; i < f.Services().Len(); i++ {
			sd := f.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				m := sd.Methods().Get(j)
				if d, err := protoregistry.GlobalFiles.FindDescriptorByName(m.FullName()); err == nil && d != nil {
					served++
					continue
				}
				unserved++
				proc := string(sd.Name()) + "/" + string(m.Name())
				for who, headers := range callers {
					r := e.post(proc, `{}`, headers...)
					if r.Status != http.StatusNotImplemented || r.Code() != "unimplemented" {
						t.Errorf("%s as %s: %d %s, want 501 unimplemented", proc, who, r.Status, r.Raw)
					}
				}
			}
		}
	}
	if unserved == 0 || served == 0 {
		t.Fatalf("served %d, unserved %d RPCs: the published protos were not read", served, unserved)
	}
}

func compareDecls(t *testing.T, msgs protoreflect.MessageDescriptors, enums protoreflect.EnumDescriptors, find func(protoreflect.FullName) protoreflect.Descriptor) {
	t.Helper()
	for i := 0; i < enums.Len(); i++ {
		ours := enums.Get(i)
		theirs, ok := find(ours.FullName()).(protoreflect.EnumDescriptor)
		if !ok {
			t.Errorf("enum %s: not in the published protos", ours.FullName())
			continue
		}
		if got, want := enumSig(ours), enumSig(theirs); got != want {
			t.Errorf("enum %s:\n ours      %s\n published %s", ours.FullName(), got, want)
		}
	}
	for i := 0; i < msgs.Len(); i++ {
		ours := msgs.Get(i)
		theirs, ok := find(ours.FullName()).(protoreflect.MessageDescriptor)
		if !ok {
			t.Errorf("message %s: not in the published protos", ours.FullName())
			continue
		}
		if got, want := messageSig(ours), messageSig(theirs); got != want {
			t.Errorf("message %s:\n ours      %s\n published %s", ours.FullName(), got, want)
		}
		compareDecls(t, ours.Messages(), ours.Enums(), find)
	}
}

// messageSig is every field of m in number order: number, name, JSON name,
// label, type, type name, proto3 optional, real oneof.
func messageSig(m protoreflect.MessageDescriptor) string {
	var b strings.Builder
	fields := m.Fields()
	byNumber := make([]protoreflect.FieldDescriptor, 0, fields.Len())
	for i := 0; i < fields.Len(); i++ {
		byNumber = append(byNumber, fields.Get(i))
	}
	for i := range byNumber {
		for j := i + 1; j < len(byNumber); j++ {
			if byNumber[j].Number() < byNumber[i].Number() {
				byNumber[i], byNumber[j] = byNumber[j], byNumber[i]
			}
		}
	}
	for _, f := range byNumber {
		typ := ""
		switch {
		case f.Message() != nil:
			typ = string(f.Message().FullName())
		case f.Enum() != nil:
			typ = string(f.Enum().FullName())
		}
		oneof := ""
		if o := f.ContainingOneof(); o != nil && !o.IsSynthetic() {
			oneof = string(o.Name())
		}
		fmt.Fprintf(&b, "{%d %s json=%s %v %v %s optional=%v oneof=%s}", f.Number(), f.Name(), f.JSONName(),
			f.Cardinality(), f.Kind(), typ, f.HasOptionalKeyword(), oneof)
	}
	return b.String()
}

func enumSig(e protoreflect.EnumDescriptor) string {
	var b strings.Builder
	for i := 0; i < e.Values().Len(); i++ {
		v := e.Values().Get(i)
		fmt.Fprintf(&b, "{%s=%d}", v.Name(), v.Number())
	}
	return b.String()
}

func methodSig(m protoreflect.MethodDescriptor) string {
	level := descriptorpb.MethodOptions_IDEMPOTENCY_UNKNOWN
	if o, ok := m.Options().(*descriptorpb.MethodOptions); ok && o != nil {
		level = o.GetIdempotencyLevel()
	}
	return fmt.Sprintf("(%s) returns (%s) client_streaming=%v server_streaming=%v idempotency=%v",
		m.Input().FullName(), m.Output().FullName(), m.IsStreamingClient(), m.IsStreamingServer(), level)
}
