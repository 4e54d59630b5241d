"""Writes the realtime-provider seed corpora of the fuzz targets
realtime_openai and realtime_gemini: every server event the scripted model of
the end-to-end tests (tests/realtime_peer.py) sends in a session that goes
through all its scripted actions (say, barge-in, transcripts, function calls,
errors, goAway, resumption, …), byte for byte as sent on the wire.

    tests/.venv/bin/python fuzz/seeds/capture_realtime.py

One file per event (NNN-<type>.json) and one file holding the whole session
as JSON lines (session.jsonl): the fuzz targets decode each line of an input
as one websocket message, so a session seed exercises the decoders' state.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import sys
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests"))

from websockets.sync.client import connect  # noqa: E402

from realtime_peer import RealtimeServer, silence, tone  # noqa: E402

GA_SESSION = {
    "type": "realtime",
    "model": "gpt-realtime",
    "instructions": "You are the receptionist.",
    "output_modalities": ["audio"],
    "audio": {
        "input": {"format": {"type": "audio/pcmu"},
                  "transcription": {"model": "gpt-4o-mini-transcribe"},
                  "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                     "silence_duration_ms": 500, "create_response": True,
                                     "interrupt_response": True}},
        "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"},
    },
    "tools": [{"type": "function", "name": "transfer_call", "description": "Transfer the caller.",
               "parameters": {"type": "object", "properties": {"destination": {"type": "string"}},
                              "required": ["destination"]}}],
    "tool_choice": "auto",
}

GEMINI_SETUP = {
    "setup": {
        "model": "models/gemini-2.5-flash-native-audio-preview-09-2025",
        "generationConfig": {"responseModalities": ["AUDIO"]},
        "systemInstruction": {"parts": [{"text": "You are the receptionist."}]},
        "tools": [{"functionDeclarations": [{
            "name": "transfer_call", "description": "Transfer the caller.",
            "parametersJsonSchema": {"type": "object", "properties": {"destination": {"type": "string"}}}}]}],
        "inputAudioTranscription": {},
        "outputAudioTranscription": {},
    }
}


def drain(ws, frames: list) -> threading.Thread:
    def run() -> None:
        try:
            while True:
                frames.append(ws.recv(timeout=30))
        except Exception:  # noqa: BLE001 - the connection closed
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def session(kind: str) -> list:
    with RealtimeServer(kind) as srv:
        headers = {"Authorization": "Bearer test-key"} if kind == "openai" else {"x-goog-api-key": "test-key"}
        ws = connect(srv.url, additional_headers=headers, open_timeout=5, close_timeout=2, proxy=None,
                     legacy=True)
        frames: list = []
        reader = drain(ws, frames)
        ws.send(json.dumps({"type": "session.update", "session": GA_SESSION} if kind == "openai"
                           else GEMINI_SETUP))
        conn = srv.wait_connection()
        fmt = conn.output_format
        conn.say(tone(440, 60, fmt), transcript="Hello, how can I help?", chunk_ms=20)
        conn.speech_stopped()
        conn.caller_transcript("I need sales")
        handle = conn.start_say(silence(2000, fmt), transcript="a long story", chunk_ms=20, pace=1.0)
        time.sleep(0.15)
        conn.speech_started()
        handle.wait(5)
        call_id = conn.function_call("transfer_call", {"destination": "sales"})
        if kind == "openai":
            ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "function_call_output", "call_id": call_id, "output": "transferred"}}))
            ws.send(json.dumps({"type": "response.create"}))
        conn.function_call("hangup_call", {})
        conn.cancel_function_calls([call_id])
        conn.idle_timeout()
        conn.resumption_update("resume-handle-1")
        conn.go_away(5)
        conn.error("The server had an error while processing your request.")
        time.sleep(0.5)
        sent = list(conn.sent)
        try:
            ws.close()
        except Exception:  # noqa: BLE001
            pass
        reader.join(3)
    return sent


def wire(obj) -> bytes:
    """The frame's bytes as realtime_peer sends them (json.dumps of a dict)."""
    if isinstance(obj, dict):
        return json.dumps(obj).encode()
    return obj.encode() if isinstance(obj, str) else obj


def main() -> None:
    for kind in ("openai", "gemini"):
        out = HERE / ("realtime_" + kind)
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        sent = session(kind)
        lines = []
        seen = set()
        for i, obj in enumerate(sent):
            data = wire(obj)
            lines.append(data)
            name = obj.get("type") if isinstance(obj, dict) and "type" in obj else \
                "-".join(obj.keys()) if isinstance(obj, dict) else "raw"
            if isinstance(obj, dict) and "serverContent" in obj:
                name += "-" + "-".join(obj["serverContent"].keys())
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
            if name in seen:
                continue  # one of each kind; session.jsonl has them all
            seen.add(name)
            (out / f"{i:03d}-{name}.json").write_bytes(data)
        (out / "session.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        print(f"{kind}: {len(sent)} events -> {out}")


if __name__ == "__main__":
    main()
