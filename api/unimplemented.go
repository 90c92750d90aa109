package api

import (
	"fmt"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// BSRPackage is the protobuf package of the Buf Schema Registry's API.
// groupgate owns every path under /buf.alpha.registry.v1alpha1.: an RPC it
// does not serve answers Connect unimplemented, for any caller, and is
// never proxied to an upstream application (which would then see a
// caller's credentials meant for groupgate).
const BSRPackage = "buf.alpha.registry.v1alpha1"

// bsrServices are the services of BSRPackage in the BSR's published protos
// (github.com/bufbuild/buf v1.61.0, proto/buf/alpha/registry/v1alpha1);
// wire_test.go checks the list against them.
var bsrServices = []string{
	"AdminService", "AuthnService", "AuthzService", "CodeGenerationService",
	"ConvertService", "DisplayService", "DocService", "DownloadService",
	"GithubService", "ImageService", "JSONSchemaService", "LocalResolveService",
	"OrganizationService", "OwnerService", "PluginCurationService", "PushService",
	"ReferenceService", "RepositoryBranchService", "RepositoryCommitService",
	"RepositoryService", "RepositoryTagService", "ResolveService",
	"ResourceService", "SCIMTokenService", "SchemaService", "SearchService",
	"StudioRequestService", "StudioService", "TokenService", "UserService",
	"WebhookService",
}

// servedMethod tells whether groupgate serves the procedure of path
// ("/package.Service/Method"): whether its generated descriptors, which
// hold only the RPCs groupgate serves, define it.
func servedMethod(path string) bool {
	service, method, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !ok || method == "" || strings.Contains(method, "/") {
		return false
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return false
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	return ok && sd.Methods().ByName(protoreflect.Name(method)) != nil
}

// unimplemented answers every request with Connect's unimplemented, in the
// protocol the client speaks (Connect, gRPC or gRPC-Web).
func unimplemented(ew *connect.ErrorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = ew.Write(w, r, connect.NewError(connect.CodeUnimplemented,
			fmt.Errorf("%s is not served by groupgate", strings.TrimPrefix(r.URL.Path, "/"))))
	})
}

// onlyServed sends a request for an RPC groupgate does not serve to
// unimplemented before authentication: the answer is the same for every
// caller.
func onlyServed(ew *connect.ErrorWriter, next http.Handler) http.Handler {
	none := unimplemented(ew)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !servedMethod(r.URL.Path) {
			none.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
