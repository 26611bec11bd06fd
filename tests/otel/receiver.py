"""An OTLP/HTTP trace receiver for tests/traces.rs: decodes each export with the official
opentelemetry-proto package and prints every span as one JSON line (ids in hex, attributes and
resource flattened), then answers as a collector does. Prints its port first."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def flat(attributes):
    return {a.key: value(a.value) for a in attributes}


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.path != "/v1/traces" or self.headers["content-type"] != "application/x-protobuf":
            self.send_response(404)
            self.end_headers()
            return
        export = trace_service_pb2.ExportTraceServiceRequest()
        export.ParseFromString(body)
        for resource_spans in export.resource_spans:
            resource = flat(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    line = {
                        "name": span.name,
                        "kind": KINDS.get(span.kind, str(span.kind)),
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "attributes": flat(span.attributes),
                        "status": span.status.code,
                        "resource": resource,
                        "scope": scope_spans.scope.name,
                        "duration_ns": span.end_time_unix_nano - span.start_time_unix_nano,
                    }
                    print(json.dumps(line), flush=True)
        answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
print(server.server_address[1], flush=True)
server.serve_forever()
