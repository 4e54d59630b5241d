"""The scripted realtime LLM servers (realtime_peer.py) on their own, driven by
a plain `websockets` client and by the official openai / google-genai SDK
clients: no dialtone needed. Everything on 127.0.0.1, every wait bounded."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pydantic
import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect

import realtime_peer
from realtime_peer import RealtimeServer, bytes_per_ms, gemini_get, decode_audio, encode_audio, silence, tone

pytestmark = pytest.mark.timeout(60)

GA_SESSION = {
    "type": "realtime",
    "model": "gpt-realtime",
    "instructions": "You are the receptionist of Example Ltd.",
    "output_modalities": ["audio"],
    "audio": {
        "input": {
            "format": {"type": "audio/pcmu"},
            "transcription": {"model": "gpt-4o-mini-transcribe", "language": "en"},
            "noise_reduction": {"type": "near_field"},
            "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                               "silence_duration_ms": 500, "create_response": True,
                               "interrupt_response": True, "idle_timeout_ms": 6000},
        },
        "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"},
    },
    "tools": [{"type": "function", "name": "transfer_call", "description": "Transfer the caller.",
               "parameters": {"type": "object", "properties": {"to": {"type": "string"}},
                              "required": ["to"]}}],
    "tool_choice": "auto",
}

GEMINI_SETUP = {
    "setup": {
        "model": "models/gemini-2.5-flash-native-audio-preview-09-2025",
        "generationConfig": {"responseModalities": ["AUDIO"],
                             "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}}}},
        "systemInstruction": {"parts": [{"text": "You are the receptionist."}]},
        "tools": [{"functionDeclarations": [{
            "name": "transfer_call", "description": "Transfer the caller.",
            "parametersJsonSchema": {"type": "object", "properties": {"to": {"type": "string"}}}}]}],
        "realtimeInputConfig": {"automaticActivityDetection": {"disabled": False, "silenceDurationMs": 500}},
        "inputAudioTranscription": {},
        "outputAudioTranscription": {},
    }
}


@pytest.fixture
def servers():
    started: list[RealtimeServer] = []

    def start(kind: str, **kw) -> RealtimeServer:
        s = RealtimeServer(kind, **kw).start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def open_client(srv: RealtimeServer, key: str = "test-key", open_timeout: float = 5.0):
    headers = {"Authorization": f"Bearer {key}"} if srv.kind == "openai" else {"x-goog-api-key": key}
    return connect(srv.url, additional_headers=headers, open_timeout=open_timeout, close_timeout=2,
                   proxy=None, legacy=True)


def recv(ws, timeout: float = 5.0) -> dict:
    return json.loads(ws.recv(timeout=timeout))


def recv_until(ws, done, timeout: float = 5.0) -> list[dict]:
    """Messages up to and including the first for which done(msg) holds."""
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while True:
        out.append(recv(ws, max(deadline - time.monotonic(), 0.01)))
        if done(out[-1]):
            return out


def openai_ready(srv: RealtimeServer, session: dict | None = None):
    ws = open_client(srv)
    assert recv(ws)["type"] == "session.created"
    ws.send(json.dumps({"type": "session.update", "session": session or GA_SESSION}))
    assert recv(ws)["type"] == "session.updated"
    return ws, srv.wait_connection()


def gemini_ready(srv: RealtimeServer):
    ws = open_client(srv)
    ws.send(json.dumps(GEMINI_SETUP))
    assert recv(ws) == {"setupComplete": {}}
    return ws, srv.wait_connection()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def validate_openai_server_events(events: list[dict]) -> None:
    from openai.types.realtime import RealtimeServerEvent
    adapter = pydantic.TypeAdapter(RealtimeServerEvent)
    for ev in events:
        adapter.validate_python(ev, strict=True)   # raises on a malformed server event


def validate_gemini_server_frames(frames: list[bytes]) -> None:
    from google.genai import types as gt
    for frame in frames:
        assert isinstance(frame, bytes), "Gemini server messages go in binary frames"
        gt.LiveServerMessage.model_validate_json(frame)   # extra="forbid": exact field names


# --------------------------------------------------------------------------
# set-up and validation


def test_openai_valid_ga_session_update_is_clean(servers):
    srv = servers("openai")
    assert srv.url.startswith("ws://127.0.0.1:") and srv.url.endswith("/v1/realtime?model=gpt-realtime")
    ws = open_client(srv)
    created = recv(ws)
    ws.send(json.dumps({"type": "session.update", "event_id": "evt_1", "session": GA_SESSION}))
    updated = recv(ws)
    validate_openai_server_events([created, updated])
    assert created["type"] == "session.created" and created["event_id"].startswith("event_")
    assert updated["type"] == "session.updated"
    assert updated["session"]["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert updated["session"]["tools"] == GA_SESSION["tools"]
    conn = srv.wait_connection()
    assert conn.ready and conn.session == GA_SESSION
    assert conn.headers["authorization"] == "Bearer test-key"
    assert conn.path == "/v1/realtime?model=gpt-realtime"
    assert conn.input_format == ("pcmu", 8000) and conn.output_format == ("pcmu", 8000)
    assert conn.validation_errors == [] and conn.protocol_errors == []
    ws.close()
    assert conn.wait_closed() == 1000


def test_openai_misspelt_field_unknown_type_and_garbage_are_reported(servers):
    srv = servers("openai")
    ws, conn = openai_ready(srv)
    bad_session = dict(GA_SESSION, instrucions="typo")
    ws.send(json.dumps({"type": "session.update", "session": bad_session}))
    ws.send(json.dumps({"type": "session.update", "session": {
        "type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad", "silense_ms": 1}}}}}))
    ws.send(json.dumps({"type": "input_audio_buffer.appendd", "audio": ""}))
    ws.send(json.dumps({"type": "conversation.item.truncate", "item_id": "x", "content_index": 0,
                        "audio_end_ms": "120"}))
    ws.send(json.dumps({"type": "response.create", "response": {"output_modalities": ["video"]}}))
    ws.send("not json")
    conn.wait_message("response.create")
    deadline = time.monotonic() + 5
    while len(conn.validation_errors) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    errs = conn.validation_errors
    assert len(errs) == 6, errs
    assert "session.instrucions" in errs[0]
    assert "turn_detection.silense_ms" in errs[1]
    assert "unknown client event type 'input_audio_buffer.appendd'" in errs[2]
    assert "audio_end_ms" in errs[3] and "integer" in errs[3]
    assert errs[4].startswith("response.create:")
    assert "non-JSON" in errs[5]
    with pytest.raises(AssertionError, match="validation_errors"):
        conn.assert_clean()


def test_gemini_valid_setup_input_and_tool_response_are_clean(servers):
    srv = servers("gemini")
    assert srv.url.endswith("/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent")
    ws = open_client(srv)
    ws.send(json.dumps(GEMINI_SETUP))
    frame = ws.recv(timeout=5)
    assert isinstance(frame, bytes) and json.loads(frame) == {"setupComplete": {}}
    conn = srv.wait_connection()
    assert conn.session == GEMINI_SETUP["setup"]
    assert conn.input_format == ("pcm", 16000) and conn.output_format == ("pcm", 24000)
    ws.send(json.dumps({"realtimeInput": {"audio": {"data": b64(b"\x01\x00" * 160),
                                                    "mimeType": "audio/pcm;rate=16000"}}}))
    ws.send(json.dumps({"realtime_input": {"audio_stream_end": True}}))   # proto field names are accepted too
    ws.send(json.dumps({"clientContent": {"turns": [{"role": "user", "parts": [{"text": "hi"}]}],
                                          "turnComplete": True}}))
    call_id = conn.function_call("transfer_call", {"to": "1001"})
    call = json.loads(ws.recv(timeout=5))
    assert call == {"toolCall": {"functionCalls": [{"id": call_id, "name": "transfer_call",
                                                    "args": {"to": "1001"}}]}}
    ws.send(json.dumps({"toolResponse": {"functionResponses": [
        {"id": call_id, "name": "transfer_call", "response": {"result": "transferred"}}]}}))
    assert conn.wait_function_output(call_id) == "transferred"
    assert len(conn.messages("realtimeInput")) == 2 and len(conn.messages("clientContent")) == 1
    assert conn.validation_errors == [] and conn.protocol_errors == []


def test_gemini_misspelt_messages_are_reported(servers):
    srv = servers("gemini")
    ws, conn = gemini_ready(srv)
    ws.send(json.dumps({"realtimeInput": {"audo": {"data": "AAAA", "mimeType": "audio/pcm;rate=16000"}}}))
    ws.send(json.dumps({"toolResponse": {"functionResponses": [{"id": "x", "name": "n", "respons": {}}]}}))
    ws.send(json.dumps({"realtimeInput": {"audio": {"data": "!!", "mimeType": "audio/pcm;rate=16000"}}}))
    ws.send(json.dumps({"clientContent": {"turnComplete": True}, "realtimeInput": {"audioStreamEnd": True}}))
    ws.send(json.dumps({"realtimeInput": {"activityStart": {}}, "setup": {}}).encode()[:-3])   # truncated JSON
    conn.wait_message("clientContent")
    deadline = time.monotonic() + 5
    while len(conn.validation_errors) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    errs = conn.validation_errors
    assert len(errs) == 5, errs
    assert "realtimeInput.audo" in errs[0] and "Extra inputs" in errs[0]
    assert "functionResponses.0.respons" in errs[1]
    assert "base64" in errs[2]
    assert "exactly one of" in errs[3]
    assert "non-JSON" in errs[4]
    # a setup whose enum value the SDK only warns about, and a Developer-API-only restriction
    srv2 = servers("gemini")
    ws2 = open_client(srv2)
    bad = json.loads(json.dumps(GEMINI_SETUP))
    bad["setup"]["generationConfig"]["responseModalities"] = ["AUDIOX"]
    bad["setup"]["explicitVadSignal"] = True
    with pytest.warns(UserWarning):
        ws2.send(json.dumps(bad))
        recv(ws2)
    errs2 = srv2.wait_connection().validation_errors
    assert any("'AUDIOX' is not a valid Modality" in e for e in errs2), errs2
    assert any("explicit_vad_signal" in e for e in errs2), errs2


def test_gemini_protocol_order_and_model_name(servers):
    srv = servers("gemini")
    ws = open_client(srv)
    ws.send(json.dumps({"realtimeInput": {"audioStreamEnd": True}}))
    ws.send(json.dumps({"setup": {"model": "gemini-2.5-flash"}}))
    recv(ws)
    ws.send(json.dumps({"realtimeInput": {"audio": {"data": b64(b"\0\0"), "mimeType": "audio/pcm;rate=8000"}}}))
    conn = srv.wait_connection()
    conn.wait_message("realtimeInput", lambda m: "audio" in m["realtimeInput"])
    errs = conn.protocol_errors
    assert any("before setup" in e for e in errs), errs
    assert any("models/NAME" in e for e in errs), errs
    assert any("mimeType" in e for e in errs), errs
    assert conn.validation_errors == []


# --------------------------------------------------------------------------
# caller audio


def test_caller_audio_is_decoded_in_order(servers):
    chunks = [bytes([i]) * 160 for i in range(5)]
    srv = servers("openai")
    ws, conn = openai_ready(srv)
    for c in chunks:
        ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(c)}))
    ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.urlsafe_b64encode(b"\xfb\xff").decode()}))
    conn.wait_message("input_audio_buffer.append", lambda m: m["audio"] == "-_8=")
    assert conn.caller_audio() == b"".join(chunks)
    times = [t for t, _ in conn.caller_audio_chunks()]
    assert len(times) == 5 and times == sorted(times)
    assert len(conn.received_at) == len(conn.received) == 7
    assert any("not standard base64" in e for e in conn.validation_errors)

    gsrv = servers("gemini")
    gws, gconn = gemini_ready(gsrv)
    for c in chunks:
        gws.send(json.dumps({"realtimeInput": {"audio": {"data": b64(c), "mimeType": "audio/pcm;rate=16000"}}}))
    deadline = time.monotonic() + 5
    while len(gconn.caller_audio_chunks()) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gconn.caller_audio() == b"".join(chunks)
    assert gconn.validation_errors == [] and gconn.protocol_errors == []


def test_openai_audio_before_session_update_is_a_protocol_error(servers):
    srv = servers("openai")
    ws = open_client(srv)
    recv(ws)
    ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(b"\xff" * 160)}))
    conn = srv.wait_connection(ready=False)
    conn.wait_message("input_audio_buffer.append")
    assert any("before any session.update" in e for e in conn.protocol_errors)
    assert conn.input_format == ("pcm", 24000)   # the default until session.update


# --------------------------------------------------------------------------
# what the model says


OPENAI_SAY_SEQUENCE = (
    ["response.created", "response.output_item.added", "conversation.item.added", "response.content_part.added"]
)
OPENAI_SAY_TAIL = ["response.output_audio.done", "response.output_audio_transcript.done",
                   "response.content_part.done", "response.output_item.done", "conversation.item.done",
                   "response.done"]


@pytest.mark.parametrize("fmt_obj,fmt,per_ms", [({"type": "audio/pcmu"}, ("pcmu", 8000), 8),
                                                 ({"type": "audio/pcm", "rate": 24000}, ("pcm", 24000), 48)])
def test_openai_say_sends_the_ga_event_sequence(servers, fmt_obj, fmt, per_ms):
    srv = servers("openai")
    session = json.loads(json.dumps(GA_SESSION))
    session["audio"]["input"]["format"] = session["audio"]["output"]["format"] = fmt_obj
    ws, conn = openai_ready(srv, session)
    assert conn.output_format == fmt and bytes_per_ms(fmt) == per_ms
    audio = tone(440, 250, fmt)                     # 2.5 chunks of 100 ms
    item_id = conn.say(audio, transcript="Hello, how can I help?", chunk_ms=100)
    events = recv_until(ws, lambda m: m["type"] == "response.done")
    validate_openai_server_events(events)
    types = [e["type"] for e in events]
    deltas = [e for e in events if e["type"] == "response.output_audio.delta"]
    assert types[:4] == OPENAI_SAY_SEQUENCE and types[-6:] == OPENAI_SAY_TAIL
    assert set(types[4:-6]) == {"response.output_audio.delta", "response.output_audio_transcript.delta"}
    assert [len(base64.b64decode(d["delta"])) for d in deltas] == [100 * per_ms, 100 * per_ms, 50 * per_ms]
    assert b"".join(base64.b64decode(d["delta"]) for d in deltas) == audio
    assert {d["item_id"] for d in deltas} == {item_id} and item_id.startswith("item_")
    assert len({e["event_id"] for e in events}) == len(events)
    said = "".join(e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta")
    assert said == "Hello, how can I help?"
    done = events[-1]["response"]
    assert done["status"] == "completed" and done["output"][0]["id"] == item_id
    assert done["output"][0]["content"] == [{"type": "output_audio", "transcript": said}]
    assert conn.sent_audio_ms == {item_id: 250}
    assert [s["type"] for s in conn.sent[-len(events):]] == types


def test_gemini_say_sends_model_turn_then_completion(servers):
    srv = servers("gemini")
    ws, conn = gemini_ready(srv)
    audio = tone(300, 250, ("pcm", 24000))
    handle = conn.start_say(audio, transcript="Hi there", chunk_ms=100)
    frames = []
    while not (frames and json.loads(frames[-1]).get("serverContent", {}).get("turnComplete")):
        frames.append(ws.recv(timeout=5))
    assert handle.wait() == handle.item_id and handle.done() and not handle.interrupted
    validate_gemini_server_frames(frames)
    msgs = [json.loads(f) for f in frames]
    parts = [m["serverContent"]["modelTurn"]["parts"][0]["inlineData"] for m in msgs
             if "modelTurn" in m["serverContent"]]
    assert {p["mimeType"] for p in parts} == {"audio/pcm;rate=24000"}
    assert [len(base64.b64decode(p["data"])) for p in parts] == [4800, 4800, 2400]   # 48 bytes/ms
    text = "".join(m["serverContent"]["outputTranscription"]["text"] for m in msgs
                   if "outputTranscription" in m["serverContent"])
    assert text == "Hi there"
    assert msgs[-2] == {"serverContent": {"generationComplete": True}}
    assert msgs[-1]["serverContent"] == {"turnComplete": True} and "usageMetadata" in msgs[-1]
    assert conn.sent_audio_ms[handle.item_id] == 250


def test_barge_in_interrupts_a_paced_say(servers):
    srv = servers("openai")
    ws, conn = openai_ready(srv)
    handle = conn.start_say(silence(3000, conn.output_format), transcript="a long story", chunk_ms=20, pace=1.0)
    recv_until(ws, lambda m: m["type"] == "response.output_audio.delta")
    time.sleep(0.2)
    assert not handle.done()
    conn.speech_started()
    events = recv_until(ws, lambda m: m["type"] == "response.done")
    types = [e["type"] for e in events]
    assert "input_audio_buffer.speech_started" in types
    assert types.index("input_audio_buffer.speech_started") < types.index("response.output_audio.done")
    assert events[-1]["response"]["status"] == "cancelled"
    assert events[-1]["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    handle.wait(5)
    assert handle.interrupted
    sent = conn.sent_audio_ms[handle.item_id]
    assert 100 <= sent < 3000
    # the client tells the model what was heard: a valid truncate is answered
    ws.send(json.dumps({"type": "conversation.item.truncate", "item_id": handle.item_id,
                        "content_index": 0, "audio_end_ms": sent - 40}))
    truncated = recv_until(ws, lambda m: m["type"] in ("conversation.item.truncated", "error"))[-1]
    assert truncated["type"] == "conversation.item.truncated" and truncated["audio_end_ms"] == sent - 40
    # the client cancels a response that is not running: the real error event, no protocol error
    ws.send(json.dumps({"type": "response.cancel"}))
    assert recv_until(ws, lambda m: m["type"] == "error")[-1]["error"]["code"] == "response_cancel_not_active"
    conn.assert_clean()

    gsrv = servers("gemini")
    gws, gconn = gemini_ready(gsrv)
    ghandle = gconn.start_say(silence(3000, ("pcm", 24000)), chunk_ms=20, pace=1.0)
    gws.recv(timeout=5)
    gconn.speech_started()
    msgs = []
    while not (msgs and msgs[-1].get("serverContent", {}).get("turnComplete")):
        msgs.append(json.loads(gws.recv(timeout=5)))
    assert msgs[-2:] == [{"serverContent": {"interrupted": True}}, {"serverContent": {"turnComplete": True}}]
    assert ghandle.wait(5) and ghandle.interrupted
    assert gconn.sent_audio_ms[ghandle.item_id] < 3000


def test_client_response_cancel_stops_a_say(servers):
    srv = servers("openai")
    ws, conn = openai_ready(srv)
    handle = conn.start_say(silence(3000, conn.output_format), chunk_ms=20, pace=1.0)
    recv_until(ws, lambda m: m["type"] == "response.output_audio.delta")
    ws.send(json.dumps({"type": "response.cancel"}))
    done = recv_until(ws, lambda m: m["type"] == "response.done")[-1]
    assert done["response"]["status_details"]["reason"] == "client_cancelled"
    assert handle.wait(5) and handle.interrupted


def test_truncate_checks(servers):
    srv = servers("openai")
    ws, conn = openai_ready(srv)
    item_id = conn.say(silence(500, conn.output_format))
    recv_until(ws, lambda m: m["type"] == "response.done")
    ws.send(json.dumps({"type": "conversation.item.truncate", "item_id": "item_never", "content_index": 0,
                        "audio_end_ms": 100}))
    assert recv(ws)["type"] == "error"
    ws.send(json.dumps({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
                        "audio_end_ms": 501}))
    assert recv(ws)["type"] == "error"
    ws.send(json.dumps({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 1,
                        "audio_end_ms": 100}))
    assert recv(ws)["type"] == "error"
    ws.send(json.dumps({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
                        "audio_end_ms": 500}))
    assert recv(ws)["type"] == "conversation.item.truncated"
    errs = conn.protocol_errors
    assert len(errs) == 3, errs
    assert "never sent" in errs[0] and "beyond the 500 ms" in errs[1] and "content_index 1" in errs[2]
    assert conn.validation_errors == []


# --------------------------------------------------------------------------
# function calls


def test_openai_function_call_round_trip(servers, monkeypatch):
    monkeypatch.setattr(realtime_peer, "FUNCTION_OUTPUT_GRACE_S", 0.3)
    srv = servers("openai")
    ws, conn = openai_ready(srv)
    call_id = conn.function_call("transfer_call", {"to": "1001"})
    events = recv_until(ws, lambda m: m["type"] == "response.done")
    validate_openai_server_events(events)
    assert [e["type"] for e in events] == [
        "response.created", "response.output_item.added", "conversation.item.added",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "conversation.item.done", "response.done"]
    done = events[4]
    assert done["call_id"] == call_id and done["name"] == "transfer_call"
    assert json.loads(done["arguments"]) == {"to": "1001"}
    ws.send(json.dumps({"type": "conversation.item.create",
                        "item": {"type": "function_call_output", "call_id": call_id, "output": "{\"ok\":true}"}}))
    ws.send(json.dumps({"type": "response.create"}))
    assert conn.wait_function_output(call_id) == '{"ok":true}'
    added = recv_until(ws, lambda m: m["type"] == "conversation.item.done")
    validate_openai_server_events(added)
    time.sleep(0.5)
    assert conn.protocol_errors == []

    # without response.create, the model would wait for ever: a protocol error
    call2 = conn.function_call("hangup_call", {})
    ws.send(json.dumps({"type": "conversation.item.create",
                        "item": {"type": "function_call_output", "call_id": call2, "output": "done"}}))
    assert conn.wait_function_output(call2) == "done"
    deadline = time.monotonic() + 3
    while not conn.protocol_errors and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(conn.protocol_errors) == 1 and "not followed by response.create" in conn.protocol_errors[0]
    # an output for a call this server never made
    ws.send(json.dumps({"type": "conversation.item.create",
                        "item": {"type": "function_call_output", "call_id": "call_bogus", "output": "x"}}))
    ws.send(json.dumps({"type": "response.create"}))
    conn.wait_function_output("call_bogus")
    assert "never sent" in conn.protocol_errors[1]


def test_gemini_function_call_round_trip(servers):
    srv = servers("gemini")
    ws, conn = gemini_ready(srv)
    call_id = conn.function_call("lookup_contact", {"number": "+15550100"}, call_id="fc-1")
    assert call_id == "fc-1"
    frame = ws.recv(timeout=5)
    validate_gemini_server_frames([frame])
    assert json.loads(frame)["toolCall"]["functionCalls"][0]["args"] == {"number": "+15550100"}
    ws.send(json.dumps({"toolResponse": {"functionResponses": [
        {"id": "fc-1", "name": "lookup_contact", "response": {"name": "Ada", "vip": True}}]}}))
    assert json.loads(conn.wait_function_output("fc-1")) == {"name": "Ada", "vip": True}
    ws.send(json.dumps({"toolResponse": {"functionResponses": [
        {"id": "fc-2", "name": "lookup_contact", "response": {"result": "x"}}]}}))
    conn.wait_function_output("fc-2")
    assert len(conn.protocol_errors) == 1 and "never sent" in conn.protocol_errors[0]
    assert conn.validation_errors == []


# --------------------------------------------------------------------------
# every other scripted event is a valid provider event


def test_every_scripted_event_validates_against_the_sdk_types(servers):
    srv = servers("openai")
    ws, conn = openai_ready(srv)
    ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(b"\xff" * 800)}))
    conn.wait_message("input_audio_buffer.append")
    conn.speech_started(audio_start_ms=20)
    conn.speech_stopped()
    conn.caller_transcript("I'd like to speak to sales")
    conn.idle_timeout()
    conn.error("Something went wrong", "server_error")
    conn.go_away()                 # OpenAI: nothing
    conn.resumption_update("h")    # OpenAI: nothing
    conn.cancel_function_calls(["x"])
    ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
    ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
    events = recv_until(ws, lambda m: m["type"] == "input_audio_buffer.cleared")
    validate_openai_server_events(events)
    assert [e["type"] for e in events] == [
        "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped", "input_audio_buffer.committed",
        "conversation.item.input_audio_transcription.completed", "input_audio_buffer.timeout_triggered",
        "error", "input_audio_buffer.committed", "input_audio_buffer.cleared"]
    assert events[1]["audio_end_ms"] == 100 and events[0]["item_id"] == events[1]["item_id"]

    gsrv = servers("gemini")
    gws, gconn = gemini_ready(gsrv)
    gconn.speech_started()
    gconn.speech_stopped()          # Gemini: nothing
    gconn.idle_timeout()            # Gemini: nothing
    gconn.caller_transcript("hello")
    gconn.go_away(30)
    gconn.resumption_update("handle-1")
    gconn.cancel_function_calls(["fc-1"])
    gconn.send_raw({"serverContent": {"turnComplete": True}})
    frames = [gws.recv(timeout=5) for _ in range(6)]
    validate_gemini_server_frames(frames)
    assert [json.loads(f) for f in frames] == [
        {"serverContent": {"interrupted": True}},
        {"serverContent": {"inputTranscription": {"text": "hello"}}},
        {"goAway": {"timeLeft": "30s"}},
        {"sessionResumptionUpdate": {"newHandle": "handle-1", "resumable": True}},
        {"toolCallCancellation": {"ids": ["fc-1"]}},
        {"serverContent": {"turnComplete": True}}]
    gconn.error("boom")             # Gemini: the connection ends with 1011
    with pytest.raises(ConnectionClosed) as closed:
        gws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011


# --------------------------------------------------------------------------
# modes, authentication, connection ends


@pytest.mark.parametrize("kind", ["openai", "gemini"])
def test_reject_401_and_wrong_key(servers, kind):
    srv = servers(kind, mode="reject_401")
    with pytest.raises(InvalidStatus) as e:
        open_client(srv)
    assert e.value.response.status_code == 401
    assert srv.auth_failures == 0 and srv.connections == []

    srv = servers(kind, api_key="right")
    with pytest.raises(InvalidStatus) as e:
        open_client(srv, key="wrong")
    assert e.value.response.status_code == 401
    with pytest.raises(InvalidStatus):
        connect(srv.url, open_timeout=5, legacy=True)       # no key at all
    assert srv.auth_failures == 2 and srv.connections == []
    assert [h["status"] for h in srv.wait_handshakes(2)] == [401, 401]
    with open_client(srv, key="right"):
        srv.wait_connection(ready=False)
    if kind == "gemini":
        with connect(srv.url + "?key=right", open_timeout=5, legacy=True):
            srv.wait_connection(1, ready=False)


def test_hang_mode_never_answers_the_handshake(servers):
    srv = servers("openai", mode="hang")
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        open_client(srv, open_timeout=0.5)
    assert time.monotonic() - t0 < 3
    assert len(srv.wait_handshakes(1)) == 1 and srv.connections == []


@pytest.mark.parametrize("kind", ["openai", "gemini"])
def test_silent_mode_never_answers_setup(servers, kind):
    srv = servers(kind, mode="silent")
    ws = open_client(srv)
    ws.send(json.dumps({"type": "session.update", "session": GA_SESSION} if kind == "openai" else GEMINI_SETUP))
    with pytest.raises(TimeoutError):
        ws.recv(timeout=0.5)
    conn = srv.wait_connection(ready=False)
    assert conn.setup_received and not conn.ready
    with pytest.raises(AssertionError, match="not seen within"):
        srv.wait_connection(timeout=0.2)


def test_auto_answer_off_and_manual_answer(servers):
    srv = servers("gemini")
    srv.auto_answer = False
    ws = open_client(srv)
    ws.send(json.dumps(GEMINI_SETUP))
    conn = srv.wait_connection(ready=False)
    conn.wait_message("setup")
    with pytest.raises(TimeoutError):
        ws.recv(timeout=0.2)
    conn.answer_setup()
    assert recv(ws) == {"setupComplete": {}}
    assert srv.wait_connection() is conn


@pytest.mark.parametrize("kind", ["openai", "gemini"])
def test_drop_ends_the_connection_without_a_close_frame(servers, kind):
    srv = servers(kind)
    ws, conn = openai_ready(srv) if kind == "openai" else gemini_ready(srv)
    conn.drop()
    with pytest.raises(ConnectionClosedError) as e:
        ws.recv(timeout=5)
    assert e.value.rcvd is None          # no close frame from the server
    assert conn.closed and conn.close_code is None


def test_close_with_a_code_and_client_close_is_recorded(servers):
    srv = servers("openai")
    ws, conn = openai_ready(srv)
    conn.close(4000)
    with pytest.raises(ConnectionClosed) as e:
        ws.recv(timeout=5)
    assert e.value.rcvd.code == 4000
    ws2 = open_client(srv)
    conn2 = srv.wait_connection(1, ready=False)
    ws2.close(1001)
    assert conn2.wait_closed() == 1001 and conn2.closed
    assert len(srv.connections) == 2


def test_wait_message_timeout_says_what_was_received(servers):
    srv = servers("openai")
    ws, conn = openai_ready(srv)
    ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(b"\xff" * 16000)}))
    conn.wait_message("input_audio_buffer.append")
    with pytest.raises(AssertionError) as e:
        conn.wait_message("conversation.item.truncate", timeout=0.2)
    text = str(e.value)
    assert "'session.update': 1" in text and "'input_audio_buffer.append': 1" in text
    assert "chars)" in text                  # the long base64 audio is cut
    with pytest.raises(AssertionError):
        conn.wait_message("input_audio_buffer.append", timeout=0.1)   # already returned once


def test_openai_beta_header_is_a_protocol_error(servers):
    srv = servers("openai")
    ws = connect(
        srv.url, additional_headers={"Authorization": "Bearer test-key", "OpenAI-Beta": "realtime=v1"},
        open_timeout=5, legacy=True)
    recv(ws)
    conn = srv.wait_connection(ready=False)
    assert any("beta protocol" in e for e in conn.protocol_errors)


def test_stop_is_quick_with_a_say_and_a_hung_handshake_in_flight():
    with RealtimeServer("openai") as srv:
        ws, conn = openai_ready(srv)
        handle = conn.start_say(silence(20000, conn.output_format), chunk_ms=20, pace=1.0)
        recv_until(ws, lambda m: m["type"] == "response.output_audio.delta")
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 5 and handle.done()
    srv.stop()                                     # idempotent
    hung = RealtimeServer("gemini", mode="hang").start()
    try:
        with pytest.raises(TimeoutError):
            open_client(hung, open_timeout=0.3)
    finally:
        t0 = time.monotonic()
        hung.stop()
    assert time.monotonic() - t0 < 5


def test_say_after_the_client_left_returns_at_once(servers):
    srv = servers("openai")
    ws, conn = openai_ready(srv)
    ws.close()
    conn.wait_closed()
    t0 = time.monotonic()
    conn.say(silence(5000, conn.output_format), chunk_ms=20, pace=1.0)
    conn.speech_started()
    assert time.monotonic() - t0 < 2


# --------------------------------------------------------------------------
# the official SDK clients against the scripted servers: no false positives,
# and the SDKs understand what the servers send


def test_openai_sdk_client_is_clean(servers):
    from openai import AsyncOpenAI
    srv = servers("openai")

    async def client() -> list[str]:
        oa = AsyncOpenAI(api_key="test-key", websocket_base_url=f"ws://127.0.0.1:{srv.port}/v1")
        types: list[str] = []
        async with oa.realtime.connect(model="gpt-realtime") as rt:
            await rt.session.update(session=GA_SESSION)
            async for event in rt:
                types.append(event.type)
                if event.type == "session.updated":
                    await rt.input_audio_buffer.append(audio=b64(b"\xff" * 160))
                    await rt.send({"type": "response.create"})
                if event.type == "response.function_call_arguments.done":
                    assert json.loads(event.arguments) == {"to": "1001"}
                    await rt.conversation.item.create(item={"type": "function_call_output",
                                                            "call_id": event.call_id, "output": "ok"})
                    await rt.response.create()
                if event.type == "response.done" and "response.output_audio.delta" in types:
                    break
        return types

    async def script() -> None:
        conn = await asyncio.to_thread(srv.wait_connection)
        await asyncio.to_thread(conn.wait_message, "response.create")
        call_id = await asyncio.to_thread(conn.function_call, "transfer_call", {"to": "1001"})
        assert await asyncio.to_thread(conn.wait_function_output, call_id) == "ok"
        await asyncio.to_thread(conn.say, tone(440, 200, conn.output_format), transcript="Transferring you")

    async def main() -> list[str]:
        types, _ = await asyncio.wait_for(asyncio.gather(client(), script()), 20)
        return types

    types = asyncio.run(main())
    assert "response.output_audio.delta" in types and types[-1] == "response.done"
    conn = srv.connections[0]
    assert conn.caller_audio() == b"\xff" * 160
    assert [m["type"] for m in conn.received] == ["session.update", "input_audio_buffer.append", "response.create",
                                                  "conversation.item.create", "response.create"]
    conn.assert_clean()


def test_gemini_sdk_client_is_clean(servers):
    from google import genai
    from google.genai import types as gt
    srv = servers("gemini")
    client = genai.Client(api_key="test-key", http_options=gt.HttpOptions(api_version="v1beta"))
    # The SDK always uses wss:// for its websocket; point it at the plain ws:// test server.
    client._api_client._websocket_base_url = lambda *a, **k: f"ws://127.0.0.1:{srv.port}"
    client._api_client._websocket_ssl_ctx = {}
    config = gt.LiveConnectConfig(
        response_modalities=[gt.Modality.AUDIO],
        system_instruction="You are the receptionist.",
        tools=[gt.Tool(function_declarations=[gt.FunctionDeclaration(
            name="transfer_call", description="Transfer the caller.",
            parameters_json_schema={"type": "object", "properties": {"to": {"type": "string"}}})])],
        realtime_input_config=gt.RealtimeInputConfig(
            automatic_activity_detection=gt.AutomaticActivityDetection(silence_duration_ms=500)),
        input_audio_transcription=gt.AudioTranscriptionConfig(),
        output_audio_transcription=gt.AudioTranscriptionConfig(),
        session_resumption=gt.SessionResumptionConfig(),
    )
    pcm = encode_audio([1000, -1000] * 160, ("pcm", 16000))

    async def client_side() -> list:
        got = []
        async with client.aio.live.connect(model="gemini-2.5-flash-native-audio-preview-09-2025",
                                           config=config) as session:
            await session.send_realtime_input(audio=gt.Blob(data=pcm, mime_type="audio/pcm;rate=16000"))
            async for msg in session.receive():
                got.append(msg)
                if msg.tool_call:
                    fc = msg.tool_call.function_calls[0]
                    await session.send_tool_response(function_responses=[gt.FunctionResponse(
                        id=fc.id, name=fc.name, response={"result": "transferred"})])
                if msg.server_content and msg.server_content.turn_complete:
                    break
        return got

    async def script() -> None:
        conn = await asyncio.to_thread(srv.wait_connection)
        await asyncio.to_thread(conn.wait_message, "realtimeInput")
        call_id = await asyncio.to_thread(conn.function_call, "transfer_call", {"to": "1001"})
        assert await asyncio.to_thread(conn.wait_function_output, call_id) == "transferred"
        await asyncio.to_thread(conn.say, tone(440, 200, conn.output_format), transcript="Done")

    async def main() -> list:
        got, _ = await asyncio.wait_for(asyncio.gather(client_side(), script()), 20)
        return got

    got = asyncio.run(main())
    audio = b"".join(m.data for m in got if m.data)
    assert len(audio) == 200 * 48
    conn = srv.connections[0]
    assert conn.headers.get("x-goog-api-key") == "test-key"
    # the SDK mixes camelCase and snake_case field names (proto JSON takes both)
    assert gemini_get(conn.session, "realtimeInputConfig.automaticActivityDetection.silenceDurationMs") == 500
    assert conn.caller_audio() == pcm
    conn.assert_clean()


# --------------------------------------------------------------------------
# audio helpers


@pytest.mark.parametrize("fmt", [("pcmu", 8000), ("pcma", 8000), ("pcm", 16000), ("pcm", 24000)])
def test_audio_helpers_round_trip(fmt):
    samples = [0, 100, -100, 1000, -1000, 12345, -12345, 32000, -32000]
    back = decode_audio(encode_audio(samples, fmt), fmt)
    for s, b in zip(samples, back):
        assert abs(s - b) <= max(16, abs(s) // 16)
    assert len(tone(440, 100, fmt)) == 100 * bytes_per_ms(fmt)
    assert len(silence(20, fmt)) == 20 * bytes_per_ms(fmt)
