"""A client nobody on the Minhu team wrote: Python's grpcio, with stubs generated from
proto/ by grpcio-tools, walks a pump-room appeal through intake, triage, a call to the
police and its signing while it watches the case live, then checks that a bad request
comes back as INVALID_ARGUMENT with google.rpc BadRequest details.

Run by tests/tests/e2e/interop.rs against a running suite; it reads:

  MINHU_E2E_DISPATCH_ADDR    host:port of dispatch
  MINHU_E2E_PROTO_DIR        the workspace's proto/ directory
  MINHU_E2E_STREET_TOKEN     a JWT of 中南路街's dispatcher
  MINHU_E2E_DEPARTMENT_TOKEN a JWT of the police (gongan) department's dispatcher

Exits 0 when every check held; otherwise prints what failed and exits 1.
"""

import datetime
import glob
import importlib
import os
import queue
import subprocess
import sys
import tempfile
import threading
import uuid

# How long any single wait (a reply, a watch message) may take.
WAIT_SECONDS = 15

# 海运社区, by the pump room of 海运宿舍.
PUMP_ROOM = (30.5335, 114.3358)
STREET = "zhongnanlu"
COMMUNITY = "zhongnanlu-haiyun"
DEPARTMENT = "gongan"


class Failure(Exception):
    """A check that did not hold."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def say(message):
    print(f"interop: {message}", flush=True)


def env(name):
    value = os.environ.get(name)
    if not value:
        raise Failure(f"environment variable {name} is not set")
    return value


def generate_stubs(proto_dir, out_dir):
    """Runs grpc_tools.protoc (which adds the well-known types' include path itself) on
    the contracts this client uses."""
    files = sorted(
        os.path.relpath(path, proto_dir)
        for package in ("minhu/common/v1", "minhu/dispatch/v1")
        for path in glob.glob(os.path.join(proto_dir, package, "*.proto"))
    )
    check(files, f"no .proto files found under {proto_dir}")
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *files,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    check(result.returncode == 0, f"protoc failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    say(f"generated stubs for {len(files)} proto files")


def main():
    dispatch_addr = env("MINHU_E2E_DISPATCH_ADDR")
    proto_dir = env("MINHU_E2E_PROTO_DIR")
    street = (("authorization", f"Bearer {env('MINHU_E2E_STREET_TOKEN')}"),)
    department = (("authorization", f"Bearer {env('MINHU_E2E_DEPARTMENT_TOKEN')}"),)

    with tempfile.TemporaryDirectory(prefix="minhu-e2e-stubs-") as stubs:
        generate_stubs(proto_dir, stubs)
        sys.path.insert(0, stubs)
        import grpc
        from google.protobuf import timestamp_pb2
        from google.rpc import error_details_pb2, status_pb2

        common = importlib.import_module("minhu.common.v1.common_pb2")
        case_pb = importlib.import_module("minhu.dispatch.v1.case_pb2")
        call_pb = importlib.import_module("minhu.dispatch.v1.call_pb2")
        events_pb = importlib.import_module("minhu.dispatch.v1.events_pb2")
        dispatch_pb = importlib.import_module("minhu.dispatch.v1.dispatch_pb2")
        dispatch_grpc = importlib.import_module("minhu.dispatch.v1.dispatch_pb2_grpc")

        # Straight to the loopback address, whatever proxy the environment names.
        with grpc.insecure_channel(dispatch_addr, options=[("grpc.enable_http_proxy", 0)]) as channel:
            grpc.channel_ready_future(channel).result(timeout=WAIT_SECONDS)
            stub = dispatch_grpc.DispatchServiceStub(channel)
            place = case_pb.Place(
                address="中南路街海运宿舍3栋水泵房",
                location=common.GeoPoint(latitude=PUMP_ROOM[0], longitude=PUMP_ROOM[1]),
            )

            # 诉求受理: the street and community are resolved from the place by the roster.
            appeal = case_pb.Case(
                channel=case_pb.CHANNEL_GRID_WORKER,
                category="城市管理/违法建设",
                title="海运社区水泵房被违规占用",
                description="海运宿舍3栋水泵房被改成商铺，墙体被打通，居民用水受影响",
                place=place,
                urgency=case_pb.URGENCY_NORMAL,
                reporter=case_pb.Reporter(name="张三", phone="13812341234"),
            )
            intake = dispatch_pb.CreateCaseRequest(case=appeal, request_id=str(uuid.uuid4()))
            case = stub.CreateCase(intake, metadata=street, timeout=WAIT_SECONDS)
            check(case.id, "CreateCase returned a case without an id")
            check(case.state == case_pb.CASE_STATE_RECEIVED, f"a new case is RECEIVED, got {case_pb.CaseState.Name(case.state)}")
            check(
                (case.street_id, case.community_id) == (STREET, COMMUNITY),
                f"the roster resolves the pump room to {STREET}/{COMMUNITY}, got {case.street_id}/{case.community_id}",
            )
            again = stub.CreateCase(intake, metadata=street, timeout=WAIT_SECONDS)
            check(again.id == case.id, f"a retried request_id returns the first case ({case.id}), got {again.id}")
            say(f"CreateCase: case {case.id} in {case.street_id}/{case.community_id}/{case.grid_id}")

            # 研判: start the call procedure.
            case = stub.TriageCase(
                dispatch_pb.TriageCaseRequest(
                    case_id=case.id, decision=case_pb.TRIAGE_DECISION_START_CALL, request_id=str(uuid.uuid4())
                ),
                metadata=street,
                timeout=WAIT_SECONDS,
            )
            check(case.state == case_pb.CASE_STATE_TRIAGED, f"triaged case is TRIAGED, got {case_pb.CaseState.Name(case.state)}")
            say("TriageCase: START_CALL")

            # 呼叫: the police, with everything the contract requires of a call.
            report_time = timestamp_pb2.Timestamp()
            report_time.FromDatetime(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2))
            started = stub.StartCall(
                dispatch_pb.StartCallRequest(
                    case_id=case.id,
                    calls=[
                        call_pb.Call(
                            department_id=DEPARTMENT,
                            matters="水泵房被违规占用，需派出所到场核查经营人员身份",
                            expected_goal="恢复水泵房原状，保障居民供水",
                            staff_requirement=call_pb.StaffRequirement(
                                count=1, qualification=common.QUALIFICATION_POLICE_OFFICER, note="需带执法记录仪"
                            ),
                            report_time=report_time,
                            report_place=place,
                        )
                    ],
                    request_id=str(uuid.uuid4()),
                ),
                metadata=street,
                timeout=WAIT_SECONDS,
            )
            check(len(started.calls) == 1, f"one call went out, got {len(started.calls)}")
            call = started.calls[0]
            check(started.case.state == case_pb.CASE_STATE_CALLING, f"case is CALLING, got {case_pb.CaseState.Name(started.case.state)}")
            check(call.state == call_pb.CALL_STATE_PENDING_SIGN, f"call is PENDING_SIGN, got {call_pb.CallState.Name(call.state)}")
            check(call.station_id, "the roster names the police station serving the street (station_id)")
            say(f"StartCall: call {call.id} to {call.department_id} (station {call.station_id})")

            # 实时进度: watch the case; its first message is the snapshot the stream continues
            # from, so once it has arrived no later event can be missed.
            watch = stub.WatchCase(dispatch_pb.WatchCaseRequest(case_id=case.id), metadata=street)
            messages = queue.Queue()

            def follow():
                try:
                    for message in watch:
                        messages.put(message)
                except grpc.RpcError as error:
                    messages.put(error)

            follower = threading.Thread(target=follow, name="watch-case", daemon=True)
            follower.start()

            def next_message(what):
                try:
                    message = messages.get(timeout=WAIT_SECONDS)
                except queue.Empty:
                    raise Failure(f"WatchCase: no message within {WAIT_SECONDS}s while waiting for {what}") from None
                if isinstance(message, grpc.RpcError):
                    if message.code() == grpc.StatusCode.CANCELLED:
                        raise Failure(f"WatchCase ended before {what}")
                    raise Failure(f"WatchCase failed while waiting for {what}: {message.code()} {message.details()}")
                return message

            snapshot = next_message("the snapshot")
            check(not snapshot.HasField("event"), "the first WatchCase message is a snapshot without an event")
            check(snapshot.case.id == case.id, "the snapshot is of the watched case")
            check([c.id for c in snapshot.calls] == [call.id], "the snapshot shows the call")
            say("WatchCase: snapshot received")

            # 签收: the police sign.
            signed = stub.SignCall(
                dispatch_pb.SignCallRequest(call_id=call.id, request_id=str(uuid.uuid4())),
                metadata=department,
                timeout=WAIT_SECONDS,
            )
            check(signed.state == call_pb.CALL_STATE_SIGNED, f"signed call is SIGNED, got {call_pb.CallState.Name(signed.state)}")
            check(not signed.signed_late, "a call signed at once is not late")
            say("SignCall: signed")

            # The watch delivers the sign, with the case as it stands after it.
            while True:
                message = next_message("the CALL_SIGNED event")
                event = message.event
                if event.event_type == events_pb.EVENT_TYPE_CALL_SIGNED:
                    break
                say(f"WatchCase: skipping {events_pb.EventType.Name(event.event_type)}")
            check(event.case_id == case.id and event.call_id == call.id, f"the sign event names the case and call: {event}")
            check(event.department_id == DEPARTMENT, f"the sign event names the department, got {event.department_id!r}")
            check(event.HasField("call_signed") and event.call_signed.on_time, f"the payload says signed on time: {event}")
            check(
                event.case_state == case_pb.CASE_STATE_CALLING,
                f"the event carries the case state CALLING, got {case_pb.CaseState.Name(event.case_state)}",
            )
            # After the snapshot the watch sends deltas: the event and the one call it changed.
            check(message.HasField("changed_call"), f"the message with the sign event carries the changed call: {message}")
            check(
                message.changed_call.id == call.id and message.changed_call.state == call_pb.CALL_STATE_SIGNED,
                f"the delta shows the call SIGNED: {message.changed_call}",
            )
            check(message.resume_token != "", "every watch message carries a resume token")
            say(f"WatchCase: CALL_SIGNED (sequence {event.sequence}), case {case_pb.CaseState.Name(event.case_state)}")
            watch.cancel()
            follower.join(timeout=WAIT_SECONDS)
            check(not follower.is_alive(), "the watch ended once cancelled")

            # Bad input: INVALID_ARGUMENT with a google.rpc.Status whose BadRequest names the field.
            untitled = case_pb.Case()
            untitled.CopyFrom(appeal)
            untitled.title = ""
            try:
                stub.CreateCase(
                    dispatch_pb.CreateCaseRequest(case=untitled, request_id=str(uuid.uuid4())),
                    metadata=street,
                    timeout=WAIT_SECONDS,
                )
                raise Failure("CreateCase without a title succeeded")
            except grpc.RpcError as error:
                check(
                    error.code() == grpc.StatusCode.INVALID_ARGUMENT,
                    f"an untitled case is INVALID_ARGUMENT, got {error.code()}: {error.details()}",
                )
                trailers = dict(error.trailing_metadata() or ())
                check("grpc-status-details-bin" in trailers, f"the error carries grpc-status-details-bin: {list(trailers)}")
                status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
                check(status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0], f"the details' code is 3, got {status.code}")
                violations = []
                for detail in status.details:
                    if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                        bad = error_details_pb2.BadRequest()
                        detail.Unpack(bad)
                        violations.extend(bad.field_violations)
                fields = [v.field for v in violations]
                check("case.title" in fields, f"a BadRequest field violation names case.title, got {fields}")
                say(f"CreateCase without a title: INVALID_ARGUMENT, BadRequest on {fields}")


if __name__ == "__main__":
    try:
        main()
    except Failure as failure:
        print(f"interop: FAILED: {failure}", file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception as error:  # an RPC or a stub that failed unexpectedly
        print(f"interop: FAILED with {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        raise SystemExit(1) from error
    say("all checks passed")
