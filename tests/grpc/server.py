"""A gRPC server (grpcio) for tests/grpc.rs: the upstream that says what it received.

Methods of demo.Echo take and return raw bytes (no protobuf, so no generated code):
Unary answers with the metadata and deadline it saw; Slow sleeps first; Stream sends N
messages; Bidi echoes each message upper-cased; Big answers a large message with the digest of
the one it got; Fail ends with its own status, which must reach the client in the trailers.
The standard health service answers SERVING. Prints its port, serves until stdin closes;
with CERT_FILE KEY_FILE arguments it serves TLS (ALPN h2) instead of h2c.
"""
import hashlib
import json
import sys
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

LIMIT = 32 << 20
OPTIONS = [("grpc.max_receive_message_length", LIMIT), ("grpc.max_send_message_length", LIMIT)]


def seen(context):
    return {
        "metadata": [[k, v] for k, v in context.invocation_metadata() if not k.endswith("-bin")],
        "time_remaining": context.time_remaining(),
    }


def unary(request, context):
    return json.dumps(dict(seen(context), len=len(request))).encode()


def slow(request, context):
    before = seen(context)
    time.sleep(float(request.decode()))
    return json.dumps(before).encode()


def stream(request, context):
    for i in range(int(request.decode())):
        yield f"message {i}".encode()


def bidi(requests, context):
    for message in requests:
        yield message.upper()


def big(request, context):
    return hashlib.sha256(request).hexdigest().encode() + b" " + b"y" * len(request)


def fail(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "no such thing: " + request.decode())


def main():
    handlers = grpc.method_handlers_generic_handler(
        "demo.Echo",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Slow": grpc.unary_unary_rpc_method_handler(slow),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
            "Big": grpc.unary_unary_rpc_method_handler(big),
            "Fail": grpc.unary_unary_rpc_method_handler(fail),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=OPTIONS)
    server.add_generic_rpc_handlers((handlers,))
    status = health.HealthServicer()
    status.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(status, server)
    if len(sys.argv) == 3:
        with open(sys.argv[1], "rb") as cert, open(sys.argv[2], "rb") as key:
            tls = grpc.ssl_server_credentials([(key.read(), cert.read())])
        port = server.add_secure_port("127.0.0.1:0", tls)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(0)


main()
