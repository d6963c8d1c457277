// A browser-style client nobody here wrote: Connect's gRPC-Web transport for Node
// (@connectrpc/connect-node), over HTTP/1.1, with messages built at run time from the
// contracts' descriptor set (@bufbuild/protobuf, no generated code). It resolves the seed
// article's pump room to its street through the roster, reads a NOT_FOUND and an
// UNAUTHENTICATED as gRPC codes, and checks the CORS preflight a browser would send for an
// allowed and a foreign origin. Run by tests/tests/e2e/web.rs, which sets:
//
//   MINHU_E2E_NODE_MODULES  the directory holding node_modules (target/e2e-node)
//   MINHU_E2E_ROSTER_ADDR   host:port of the roster
//   MINHU_E2E_DESCRIPTORS   the encoded FileDescriptorSet of proto/
//   MINHU_E2E_TOKEN         a development token
//   MINHU_E2E_STREET        the street the pump room is in
//   MINHU_E2E_ORIGIN        an origin the server allows
//   MINHU_E2E_DISPATCH_ADDR host:port of dispatch, and
//   MINHU_E2E_CASE_ID       a case of the street: its first WatchCase snapshot is read
//                           over gRPC-Web server streaming
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import http from "node:http";
import assert from "node:assert/strict";

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set`);
  return value;
};
const require = createRequire(`${env("MINHU_E2E_NODE_MODULES")}/`);
const { createClient, ConnectError, Code } = require("@connectrpc/connect");
const { createGrpcWebTransport } = require("@connectrpc/connect-node");
const { fromBinary, createFileRegistry } = require("@bufbuild/protobuf");
const { FileDescriptorSetSchema } = require("@bufbuild/protobuf/wkt");

const addr = env("MINHU_E2E_ROSTER_ADDR");
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(env("MINHU_E2E_DESCRIPTORS"))));
const roster = registry.getService("minhu.roster.v1.RosterService");
assert.ok(roster, "the descriptor set has the roster service");

// HTTP/1.1, as a browser behind an HTTP/1.1-only gateway would reach the server.
const transport = createGrpcWebTransport({ baseUrl: `http://${addr}`, httpVersion: "1.1" });
const client = createClient(roster, transport);
const headers = { authorization: `Bearer ${env("MINHU_E2E_TOKEN")}` };

const pumpRoom = { location: { latitude: 30.5335, longitude: 114.3358 } };
const resolved = await client.resolveLocation(pumpRoom, { headers });
assert.equal(resolved.streetId, env("MINHU_E2E_STREET"), "the pump room is in the seed's street");
console.log(`grpc-web: ResolveLocation -> street ${resolved.streetId} (community ${resolved.communityId || "-"})`);

const expectCode = async (call, code, what) => {
  try {
    await call();
  } catch (e) {
    const error = ConnectError.from(e);
    assert.equal(error.code, code, `${what}: ${error.message}`);
    console.log(`grpc-web: ${what} -> ${Code[error.code]} (${error.rawMessage})`);
    return;
  }
  assert.fail(`${what} succeeded`);
};
// The Gulf of Guinea is in no street of Wuchang.
await expectCode(
  () => client.resolveLocation({ location: { latitude: 0.5, longitude: 0.5 } }, { headers }),
  Code.NotFound,
  "a point in no street",
);
await expectCode(() => client.resolveLocation(pumpRoom), Code.Unauthenticated, "a call without a token");

// Server streaming: a live watch (实时进度) starts with the case as it is.
const dispatch = createClient(
  registry.getService("minhu.dispatch.v1.DispatchService"),
  createGrpcWebTransport({ baseUrl: `http://${env("MINHU_E2E_DISPATCH_ADDR")}`, httpVersion: "1.1" }),
);
const caseId = env("MINHU_E2E_CASE_ID");
const watching = new AbortController();
let snapshot;
try {
  for await (const message of dispatch.watchCase({ caseId }, { headers, signal: watching.signal })) {
    snapshot = message;
    // A live stream never ends by itself: stop after the first snapshot.
    watching.abort();
  }
} catch (e) {
  // Aborting is how a watch ends on the client; anything else is a failure.
  if (ConnectError.from(e).code !== Code.Canceled) throw e;
}
assert.ok(snapshot, "WatchCase sent its first snapshot");
assert.equal(snapshot.case.id, caseId);
assert.equal(snapshot.case.streetId, env("MINHU_E2E_STREET"));
console.log(`grpc-web: WatchCase -> first snapshot of case ${snapshot.case.id}, ${snapshot.calls.length} calls`);

// What a browser sends before a cross-origin gRPC-Web call.
const preflight = (origin) =>
  new Promise((resolve, reject) => {
    const [host, port] = addr.split(":");
    const request = http.request(
      {
        host,
        port,
        method: "OPTIONS",
        path: "/minhu.roster.v1.RosterService/ResolveLocation",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization,content-type,x-grpc-web,x-user-agent",
        },
      },
      (response) => {
        response.resume();
        response.on("end", () => resolve(response));
      },
    );
    request.on("error", reject);
    request.end();
  });

const allowedOrigin = env("MINHU_E2E_ORIGIN");
const allowed = await preflight(allowedOrigin);
assert.equal(allowed.statusCode, 200, "a preflight is answered");
assert.equal(allowed.headers["access-control-allow-origin"], allowedOrigin);
const allowHeaders = (allowed.headers["access-control-allow-headers"] || "").toLowerCase();
for (const header of ["authorization", "content-type", "x-grpc-web", "x-user-agent"]) {
  assert.ok(allowHeaders.includes(header), `preflight allows ${header}: ${allowHeaders}`);
}
assert.match(allowed.headers["access-control-allow-methods"] || "", /POST/);
console.log(`grpc-web: preflight from ${allowedOrigin} allowed (${allowHeaders})`);

const foreign = await preflight("https://evil.example");
assert.equal(foreign.headers["access-control-allow-origin"], undefined, "a foreign origin is not allowed");
console.log("grpc-web: preflight from https://evil.example not allowed");

console.log("grpc-web: all checks passed");
