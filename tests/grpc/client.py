"""A gRPC client (grpcio) for tests/grpc.rs: makes the calls named on the command line through
tollgate and prints, per call, what the client library reported, as one JSON object.

usage: client.py TARGET CA_FILE|- SERVICE_TOKEN USER_TOKEN CALL...
"""
import hashlib
import json
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

LIMIT = 32 << 20
OPTIONS = [("grpc.max_receive_message_length", LIMIT), ("grpc.max_send_message_length", LIMIT)]

target, ca_file, service_token, user_token, *calls = sys.argv[1:]
if ca_file == "-":
    channel = grpc.insecure_channel(target, options=OPTIONS)
else:
    with open(ca_file, "rb") as f:
        credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
    channel = grpc.secure_channel(
        target, credentials, options=OPTIONS + [("grpc.ssl_target_name_override", "localhost")]
    )


def bearer(token):
    return [("authorization", "Bearer " + token)]


SERVICE = bearer(service_token)


def unary(method, request, metadata=SERVICE, timeout=10):
    return channel.unary_unary(method)(request, metadata=metadata, timeout=timeout)


def as_json(reply):
    return json.loads(reply)


CALLS = {
    "unary": lambda: as_json(
        unary("/demo.Echo/Unary", b"hello", SERVICE + [("x-user-id", "forged-admin")])
    ),
    "no_token": lambda: unary("/demo.Echo/Unary", b"hello", []),
    "bad_token": lambda: unary("/demo.Echo/Unary", b"hello", bearer("not.a.token")),
    "user_token": lambda: unary("/demo.Echo/Unary", b"hello", bearer(user_token)),
    "client_deadline": lambda: as_json(unary("/demo.Echo/Unary", b"x", timeout=2.5)),
    "route_deadline": lambda: unary("/demo.Echo/Slow", b"3", timeout=30),
    "route_bound": lambda: as_json(unary("/demo.Echo/Slow", b"0", timeout=30)),
    "stream": lambda: [
        m.decode()
        for m in channel.unary_stream("/demo.Echo/Stream")(b"100", metadata=SERVICE, timeout=10)
    ],
    "bidi": lambda: [
        m.decode()
        for m in channel.stream_stream("/demo.Echo/Bidi")(
            (f"ping {i}".encode() for i in range(50)), metadata=SERVICE, timeout=10
        )
    ],
    "big": lambda: big(),
    "upstream_status": lambda: unary("/demo.Echo/Fail", b"widget"),
    "health": lambda: health_pb2.HealthCheckResponse.ServingStatus.Name(
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
    ),
    "no_route": lambda: unary("/other.Service/Call", b"x"),
    "upstream_down": lambda: unary("/down.Service/Call", b"x"),
}


def big():
    message = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    reply = unary("/demo.Echo/Big", message, timeout=30)
    digest, _, rest = reply.partition(b" ")
    return {
        "digest_matches": digest.decode() == hashlib.sha256(message).hexdigest(),
        "sent": len(message),
        "received": len(rest),
    }


results = {}
for name in calls:
    started = time.monotonic()
    try:
        results[name] = {"ok": CALLS[name]()}
    except grpc.RpcError as e:
        results[name] = {"code": e.code().name, "details": e.details()}
    results[name]["seconds"] = time.monotonic() - started
print(json.dumps(results))
