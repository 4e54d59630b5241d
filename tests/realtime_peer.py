"""Scripted realtime LLM servers for the end-to-end tests: OpenAI Realtime (GA
protocol) and Gemini Live (BidiGenerateContent), on 127.0.0.1.

The realtime LLM is the one peer these tests cannot reach, so a test plays the
model: it starts a `RealtimeServer`, points dialtone's provider URL at
`server.url`, scripts what the model says and does, and the server records
and checks everything the switch sends.

    from realtime_peer import RealtimeServer, tone

    with RealtimeServer("openai") as llm:            # or "gemini"; key "test-key"
        ...  # a persona with url=llm.url, then a call to it
        conn = llm.wait_connection()                 # session.update answered
        assert conn.input_format == ("pcmu", 8000)
        item = conn.say(tone(440, 1000, conn.output_format), transcript="Hello!")
        conn.speech_started()                        # the caller barges in
        trunc = conn.wait_message("conversation.item.truncate")
        assert trunc["audio_end_ms"] <= conn.sent_audio_ms[item]
        call_id = conn.function_call("hangup_call", {})
        assert conn.wait_function_output(call_id) == "ok"
        conn.assert_clean()                          # no validation/protocol errors

RealtimeServer(kind, *, api_key="test-key", mode="normal"): .start()/.stop()
(or `with`), .url, .port, .connections, .auth_failures, .handshakes (every
upgrade request: path, headers, HTTP status), .auto_answer, and the bounded
waits wait_connection(index, timeout, *, ready=True) and wait_handshakes(n).
Modes: "normal"; "reject_401" (HTTP 401 at the handshake, whatever the key);
"hang" (the upgrade request is read and never answered); "silent" (the
handshake completes, session.update / setup are never answered, and OpenAI
sends no session.created). A missing or wrong key (OpenAI `Authorization:
Bearer KEY`; Gemini `x-goog-api-key` or `?key=`) gets HTTP 401 and counts in
`auth_failures`; an unknown path gets 404. In "normal" mode OpenAI sends
session.created at once and answers each session.update with session.updated
carrying the effective session; Gemini answers setup with setupComplete.
With auto_answer = False, Connection.answer_setup() does it by hand.

Connection (one websocket session): what the client sent — .received,
.received_at, .messages(type_or_key), .wait_message(...), .caller_audio(),
.caller_audio_chunks(), .session, .input_format/.output_format, .headers,
.path, .function_outputs, .closed/.close_code, .wait_closed(); what the server
sent — .sent, .sent_audio_ms; the checks below — .validation_errors,
.protocol_errors, .server_errors (bugs of this module), .assert_clean(),
.describe(). Scripted actions send the providers' exact events (each method
says which): say/start_say, speech_started, speech_stopped,
caller_transcript, function_call, cancel_function_calls (Gemini),
idle_timeout, go_away, resumption_update, error, drop, close, send_raw. They
are called from the test thread and bounded; sends on a closed connection are
dropped. A say in progress (pace > 0) is cut short by speech_started()
(OpenAI: unless the session's turn detection has interrupt_response false)
and by the client's response.cancel, ending with the provider's
cancelled-response events. Responses (say, and OpenAI function calls) queue
behind each other, as one model's do.

What is checked (nothing raises in the server thread; messages are recorded,
not answered with errors, so one test run reports every problem):
- validation_errors: every client message against the official SDK types.
  OpenAI: `TypeAdapter(openai.types.realtime.RealtimeClientEvent)` in strict
  mode (no "120" for an int), then every non-empty `model_extra` in the result
  is an error naming the key path (the openai models allow extra keys, so a
  misspelt field would pass otherwise); an unknown "type" is an error.
  Gemini: `google.genai.types.LiveClientMessage` (extra="forbid") from the
  JSON text, with `setup` extended by the field the SDK's own converter writes
  there but LiveClientSetup lacks (`realtimeInputConfig`); plus exactly one
  top-level member (a oneof), enum values the SDK only warns about, and the
  Gemini Developer API restrictions its converter raises for. OpenAI audio
  must be standard base64; Gemini audio standard or URL-safe (proto3 JSON
  takes both, and the google-genai SDK sends URL-safe). Non-JSON frames too.
  Proto JSON also accepts snake_case field names (the SDK sends some), so
  `messages()`, `wait_message()` and `gemini_get()` accept both spellings.
- protocol_errors: misuse no schema sees: audio before any session.update; a
  function_call_output not followed by response.create within 2 s; outputs
  for call ids this server never sent (and, Gemini, the wrong name); a
  truncate naming an item this server sent no audio for, reaching past the
  audio sent for it, or with content_index != 0 (answered with the provider's
  error event, a valid one with conversation.item.truncated); response.create
  while a response is in progress; the beta `OpenAI-Beta: realtime=v1`
  header; a binary frame to OpenAI; output_audio_buffer.clear over a
  websocket; a session.type other than "realtime"; Gemini messages before
  setup or before setupComplete, a second setup, a model not "models/NAME",
  caller audio not "audio/pcm;rate=16000", the deprecated mediaChunks.

Audio helpers: tone(), silence(), encode_audio(), decode_audio() and
bytes_per_ms() for the formats ("pcmu", 8000), ("pcma", 8000), ("pcm", rate).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import concurrent.futures
import enum
import functools
import json
import math
import random
import re
import string
import threading
import time
import typing
import urllib.parse
from typing import Any, Callable, Optional

import pydantic
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

LOOPBACK = "127.0.0.1"
OPENAI_PATH = "/v1/realtime"
OPENAI_MODEL = "gpt-realtime"
GEMINI_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
_GEMINI_PATH_RE = re.compile(
    r"^/ws/google\.ai\.generativelanguage\.v1(alpha|beta)\.GenerativeService\.BidiGenerateContent$")
GEMINI_INPUT_MIME = "audio/pcm;rate=16000"
GEMINI_OUTPUT_MIME = "audio/pcm;rate=24000"
MODES = ("normal", "reject_401", "hang", "silent")
FUNCTION_OUTPUT_GRACE_S = 2.0   # a function_call_output must be followed by response.create within this

# --------------------------------------------------------------------------
# audio formats and helpers

Format = tuple[str, int]


def bytes_per_ms(fmt: Format) -> int:
    """Bytes per millisecond of mono audio: G.711 1 byte/sample, PCM 2 (s16le)."""
    kind, rate = fmt
    return rate // 1000 * (1 if kind in ("pcmu", "pcma") else 2)


def _ulaw_encode(s: int) -> int:
    sign = 0x80 if s < 0 else 0
    s = min(abs(s), 32635) + 0x84
    exp = min(max(s.bit_length() - 8, 0), 7)
    return ~(sign | exp << 4 | (s >> (exp + 3)) & 0x0F) & 0xFF


def _ulaw_decode(u: int) -> int:
    u = ~u & 0xFF
    s = (((u & 0x0F) << 3) + 0x84 << ((u >> 4) & 7)) - 0x84
    return -s if u & 0x80 else s


_ALAW_SEG_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _alaw_encode(s: int) -> int:
    s >>= 3
    if s >= 0:
        mask = 0xD5
    else:
        mask, s = 0x55, -s - 1
    seg = next((i for i, end in enumerate(_ALAW_SEG_END) if s <= end), 8)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((s >> 1) if seg < 2 else (s >> seg)) & 0x0F) ^ mask


def _alaw_decode(a: int) -> int:
    a ^= 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = t + 8 if seg == 0 else (t + 0x108) << max(seg - 1, 0)
    return t if a & 0x80 else -t


def encode_audio(samples: typing.Iterable[int], fmt: Format) -> bytes:
    """16-bit signed samples to `fmt` (pcmu, pcma, or little-endian pcm)."""
    kind = fmt[0]
    if kind == "pcmu":
        return bytes(_ulaw_encode(s) for s in samples)
    if kind == "pcma":
        return bytes(_alaw_encode(s) for s in samples)
    return b"".join(max(-32768, min(32767, s)).to_bytes(2, "little", signed=True) for s in samples)


def decode_audio(data: bytes, fmt: Format) -> list[int]:
    """`fmt` audio to 16-bit signed samples."""
    kind = fmt[0]
    if kind == "pcmu":
        return [_ulaw_decode(b) for b in data]
    if kind == "pcma":
        return [_alaw_decode(b) for b in data]
    return [int.from_bytes(data[i:i + 2], "little", signed=True) for i in range(0, len(data) - 1, 2)]


def tone(freq: float, ms: int, fmt: Format, amplitude: float = 0.3) -> bytes:
    """`ms` of a sine at `freq` Hz in `fmt`."""
    rate = fmt[1]
    n = rate * ms // 1000
    return encode_audio((int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)), fmt)


def silence(ms: int, fmt: Format) -> bytes:
    return encode_audio([0] * (fmt[1] * ms // 1000), fmt)


def _format_of(obj: Any) -> Format:
    """A GA audio format object ({"type": "audio/pcmu"} …) as (kind, rate)."""
    t = obj.get("type") if isinstance(obj, dict) else None
    if t == "audio/pcmu":
        return ("pcmu", 8000)
    if t == "audio/pcma":
        return ("pcma", 8000)
    rate = obj.get("rate") if isinstance(obj, dict) else None
    return ("pcm", rate if isinstance(rate, int) else 24000)


def _format_obj(fmt: Format) -> dict:
    return {"type": "audio/pcm", "rate": fmt[1]} if fmt[0] == "pcm" else {"type": f"audio/{fmt[0]}"}


# --------------------------------------------------------------------------
# validation against the official SDK types (built once, lazily: importing the
# SDKs costs about a second)

_validator_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def _openai_validators() -> tuple[Any, dict[str, Any]]:
    from openai.types.realtime import RealtimeClientEvent
    union = typing.get_args(RealtimeClientEvent)[0]      # Annotated[Union[...], PropertyInfo]
    by_type = {}
    for cls in typing.get_args(union):
        (literal,) = typing.get_args(cls.model_fields["type"].annotation)
        by_type[literal] = pydantic.TypeAdapter(cls)
    return pydantic.TypeAdapter(RealtimeClientEvent), by_type


@functools.lru_cache(maxsize=None)
def _gemini_validator() -> Any:
    from google.genai import types as gt
    # The SDK's own converter (_live_converters._LiveConnectConfig_to_mldev)
    # writes these into "setup" on the wire, but LiveClientSetup lacks them.
    missing = {}
    if "realtime_input_config" not in gt.LiveClientSetup.model_fields:
        missing["realtime_input_config"] = (Optional[gt.RealtimeInputConfig], None)
    model = gt.LiveClientMessage
    if missing:
        setup = pydantic.create_model("WireLiveClientSetup", __base__=gt.LiveClientSetup, **missing)
        model = pydantic.create_model("WireLiveClientMessage", __base__=gt.LiveClientMessage,
                                      setup=(Optional[setup], None))
    model.model_rebuild()
    return model


def warm_validators(kind: str) -> None:
    """Import the SDK and build its validator now (the first use costs ~1 s)."""
    with _validator_lock:
        if kind == "openai":
            _openai_validators()[0].validate_python({"type": "response.create"})
        else:
            _gemini_validator().model_validate_json('{"realtimeInput": {"audioStreamEnd": true}}')


def _short(value: Any, limit: int = 60) -> str:
    def cut(v: Any) -> Any:
        if isinstance(v, str) and len(v) > limit:
            return f"{v[:limit]}…({len(v)} chars)"
        if isinstance(v, dict):
            return {k: cut(x) for k, x in v.items()}
        if isinstance(v, list):
            return [cut(x) for x in v[:8]] + ([f"…({len(v)} items)"] if len(v) > 8 else [])
        return v
    try:
        return json.dumps(cut(value), default=str)
    except (TypeError, ValueError):
        return repr(value)[:200]


def _pydantic_errors(e: pydantic.ValidationError, limit: int = 8) -> str:
    # In unions, the variants whose literal "type" did not match add noise: list them last.
    errs = sorted(e.errors(include_url=False), key=lambda d: d["type"] == "literal_error")
    lines = [f"{'.'.join(str(p) for p in d['loc']) or '$'}: {d['msg']} (input {_short(d.get('input'), 40)})"
             for d in errs[:limit]]
    if len(errs) > limit:
        lines.append(f"… {len(errs) - limit} more")
    return "; ".join(lines)


def _walk(obj: Any, path: str, out: list[str]) -> None:
    """Unknown keys (model_extra) and enum values the SDK only warned about."""
    if isinstance(obj, pydantic.BaseModel):
        for key in obj.model_extra or {}:
            out.append(f"unknown field {path}.{key}".replace("field .", "field "))
        for name, field in type(obj).model_fields.items():
            _walk(getattr(obj, name), f"{path}.{field.alias or name}", out)
    elif isinstance(obj, enum.Enum):
        if obj._name_ not in type(obj).__members__:
            out.append(f"{path.lstrip('.')}: {obj.value!r} is not a valid {type(obj).__name__}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _walk(v, f"{path}[{i}]", out)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _walk(v, f"{path}.{k}", out)


def validate_openai(msg: Any) -> list[str]:
    """Errors of one OpenAI client event (empty when it is valid)."""
    union, by_type = _openai_validators()
    t = msg.get("type") if isinstance(msg, dict) else None
    if not isinstance(t, str):
        return ["message has no string 'type'"]
    try:
        model = union.validate_python(msg, strict=True)
    except pydantic.ValidationError as e:
        if t not in by_type:
            return [f"unknown client event type {t!r}"]
        try:
            by_type[t].validate_python(msg, strict=True)
        except pydantic.ValidationError as e2:
            return [_pydantic_errors(e2)]
        return [_pydantic_errors(e)]
    out: list[str] = []
    _walk(model, "", out)
    return out


_GEMINI_MEMBERS = ("setup", "clientContent", "realtimeInput", "toolResponse", "contextUpdate")


def validate_gemini(raw: str) -> list[str]:
    """Errors of one Gemini client message, from its JSON text."""
    try:
        model = _gemini_validator().model_validate_json(raw)
    except pydantic.ValidationError as e:
        return [_pydantic_errors(e)]
    out: list[str] = []
    _walk(model, "", out)
    present = [k for k in _GEMINI_MEMBERS if getattr(model, _snake(k)) is not None]
    if len(present) != 1:
        out.append(f"a LiveClientMessage carries exactly one of {_GEMINI_MEMBERS}, got {present}")
    try:
        from google.genai import _live_converters
        _live_converters._LiveClientMessage_to_mldev(None, model)
    except ValueError as e:     # the SDK's "... is not supported in Gemini API"
        out.append(f"Gemini Developer API: {e}")
    except Exception:           # noqa: BLE001 - a private helper: only its ValueErrors matter
        pass
    return out


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _g(d: Any, key: str) -> Any:
    """d[key] for a camelCase key, accepting the proto field name (snake_case) too."""
    if not isinstance(d, dict):
        return None
    return d[key] if key in d else d.get(_snake(key))


def gemini_get(obj: Any, path: str) -> Any:
    """A field of a Gemini message by dotted camelCase path ("realtimeInputConfig.
    automaticActivityDetection.silenceDurationMs"), whichever spelling the
    client used at each level: proto JSON accepts both the camelCase and the
    snake_case field names, and the official SDK itself sends a mix."""
    for key in path.split("."):
        obj = _g(obj, key)
    return obj


def _b64decode(data: Any, urlsafe_ok: bool = False) -> bytes:
    """Strict base64 (raises ValueError): the standard alphabet with padding, or
    with urlsafe_ok also the URL-safe one, padded or not (what proto3 JSON
    accepts for bytes, and what the google-genai SDK itself sends)."""
    if not isinstance(data, str):
        raise ValueError("not a string")
    try:
        if urlsafe_ok and re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", data):
            return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
        return base64.b64decode(data, validate=True)
    except binascii.Error as e:
        raise ValueError(str(e)) from None


def _new_id(prefix: str, n: int = 21) -> str:
    return prefix + "".join(random.choices(string.ascii_letters + string.digits, k=n))


def _merge_session(base: dict, update: dict) -> dict:
    """The effective session after a session.update: the fields present replace
    the old ones; only "audio" and its "input"/"output" are merged key by key
    (a new format or turn_detection object replaces the old one whole)."""
    out = {**base, **update}
    if isinstance(base.get("audio"), dict) and isinstance(update.get("audio"), dict):
        audio = {**base["audio"], **update["audio"]}
        for side in ("input", "output"):
            if isinstance(base["audio"].get(side), dict) and isinstance(update["audio"].get(side), dict):
                audio[side] = {**base["audio"][side], **update["audio"][side]}
        out["audio"] = audio
    return out


# --------------------------------------------------------------------------
# the server


class RealtimeServer:
    """A scripted realtime LLM server on 127.0.0.1 (a free port), speaking
    `kind` = "openai" (GA protocol) or "gemini" (Live BidiGenerateContent).
    Runs an asyncio `websockets` server in a background thread; every public
    method is thread-safe and called from the test thread; every wait is
    bounded."""

    def __init__(self, kind: str, *, api_key: str = "test-key", mode: str = "normal"):
        if kind not in ("openai", "gemini"):
            raise ValueError(f"kind must be 'openai' or 'gemini', not {kind!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.kind = kind
        self.api_key = api_key
        self.mode = mode
        self.auto_answer = True
        self.port = 0
        self.url = ""
        self.connections: list[Connection] = []
        self.auth_failures = 0
        # every handshake request seen, accepted or not: {"path", "headers", "status"}
        self.handshakes: list[dict] = []
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._closing: asyncio.Event | None = None

    # --- lifecycle

    def start(self) -> "RealtimeServer":
        if self._loop is not None:
            return self
        warm_validators(self.kind)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"realtime-{self.kind}", daemon=True)
        self._thread.start()
        self._call(self._astart(), 10.0)
        if self.kind == "openai":
            self.url = f"ws://{LOOPBACK}:{self.port}{OPENAI_PATH}?model={OPENAI_MODEL}"
        else:
            self.url = f"ws://{LOOPBACK}:{self.port}{GEMINI_PATH}"
        return self

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            fut = asyncio.run_coroutine_threadsafe(self._astop(), loop)
            fut.result(15.0)
        except Exception:   # noqa: BLE001 - stopping must not mask the test's own failure
            pass
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(5.0)
            if not loop.is_running():
                loop.close()

    def __enter__(self) -> "RealtimeServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    async def _astart(self) -> None:
        self._closing = asyncio.Event()
        self._server = await serve(
            self._handler, LOOPBACK, 0,
            process_request=self._process_request,
            compression=None,
            max_size=16 * 2**20,
            open_timeout=None if self.mode == "hang" else 10,
            close_timeout=2,
            server_header=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _astop(self) -> None:
        assert self._closing is not None
        self._closing.set()
        for conn in list(self.connections):
            for task in list(conn._tasks):
                task.cancel()
        self._server.close()
        try:
            await asyncio.wait_for(self._server.wait_closed(), 5.0)
        except (asyncio.TimeoutError, TimeoutError):
            pass

    def _call(self, coro: Any, timeout: float) -> Any:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the RealtimeServer is not running")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise AssertionError(f"realtime server: an action did not finish within {timeout} s") from None

    # --- handshake

    def _refuse(self, connection: ServerConnection, status: int, body: dict) -> Any:
        response = connection.respond(status, json.dumps(body) + "\n")
        response.headers["Content-Type"] = "application/json"
        return response

    async def _process_request(self, connection: ServerConnection, request: Any) -> Any:
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        record = {"path": request.path, "headers": headers, "status": 101}
        with self._cond:
            self.handshakes.append(record)
            self._cond.notify_all()
        if self.mode == "hang":
            assert self._closing is not None
            await self._closing.wait()
            record["status"] = 503
            return connection.respond(503, "shutting down\n")
        url = urllib.parse.urlsplit(request.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if self.kind == "openai":
            path_ok = url.path == OPENAI_PATH
            key_ok = headers.get("authorization") == f"Bearer {self.api_key}"
        else:
            path_ok = bool(_GEMINI_PATH_RE.match(url.path))
            key_ok = self.api_key in (headers.get("x-goog-api-key"), query.get("key"))
        if not path_ok:
            record["status"] = 404
            return self._refuse(connection, 404, {"error": {"message": f"no such path {url.path}", "code": 404}})
        if self.mode == "reject_401" or not key_ok:
            record["status"] = 401
            if not key_ok:
                with self._cond:
                    self.auth_failures += 1
                    self._cond.notify_all()
            if self.kind == "openai":
                return self._refuse(connection, 401, {"error": {
                    "message": "Incorrect API key provided.", "type": "invalid_request_error",
                    "code": "invalid_api_key", "param": None}})
            return self._refuse(connection, 401, {"error": {
                "code": 401, "message": "API key not valid. Please pass a valid API key.",
                "status": "UNAUTHENTICATED"}})
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        with self._cond:
            conn = Connection(self, ws, len(self.connections))
            self.connections.append(conn)
            self._cond.notify_all()
        try:
            await conn._on_open()
            async for frame in ws:
                await conn._on_frame(frame)
        except ConnectionClosed:
            pass
        finally:
            conn._on_closed()

    # --- waiting

    def wait_connection(self, index: int = 0, timeout: float = 10.0, *, ready: bool = True) -> "Connection":
        """The index-th connection, once it has completed setup (session.update
        or setup answered); with ready=False as soon as the handshake is done."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if len(self.connections) > index and (not ready or self.connections[index].ready):
                    return self.connections[index]
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            conns = list(self.connections)
        detail = "\n".join(c.describe(last=5) for c in conns) or "(none)"
        raise AssertionError(
            f"{self.kind} realtime server ({self.mode}): connection #{index} "
            f"{'ready' if ready else 'open'} not seen within {timeout} s; "
            f"{len(self.handshakes)} handshakes (statuses {[h['status'] for h in self.handshakes]}), "
            f"auth_failures={self.auth_failures}; connections:\n{detail}")

    def wait_handshakes(self, count: int, timeout: float = 10.0) -> list[dict]:
        """Wait until `count` handshake requests have arrived (any outcome)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.handshakes) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.handshakes)} handshakes within {timeout} s, wanted {count}")
                self._cond.wait(left)
            return list(self.handshakes)

    def assert_clean(self) -> None:
        """No validation, protocol or server errors on any connection."""
        for conn in list(self.connections):
            conn.assert_clean()


class SayHandle:
    """A response being sent by start_say(): .done(), .wait(timeout) -> item id,
    .interrupted (whether it was cut short by a barge-in or response.cancel)."""

    def __init__(self, item_id: str, future: concurrent.futures.Future, timeout: float):
        self.item_id = item_id
        self._future = future
        self._timeout = timeout

    def done(self) -> bool:
        return self._future.done()

    def wait(self, timeout: float | None = None) -> str:
        try:
            self._future.result(self._timeout if timeout is None else timeout)
        except concurrent.futures.TimeoutError:
            raise AssertionError(f"say({self.item_id}) still sending after {timeout or self._timeout} s") from None
        return self.item_id

    @property
    def interrupted(self) -> bool:
        return self._future.done() and self._future.result() is True


class _Active:
    """The response being generated (a say or a function call)."""

    def __init__(self) -> None:
        self.cancel = asyncio.Event()
        self.finished = asyncio.Event()
        self.reason: str | None = None


class Connection:
    """One websocket session from the client: what it sent, and the scripted
    model's actions on it."""

    def __init__(self, server: RealtimeServer, ws: ServerConnection, index: int):
        self.server = server
        self.kind = server.kind
        self.index = index
        self._ws = ws
        self._lock = server._cond
        self.headers: dict[str, str] = {k.lower(): v for k, v in ws.request.headers.raw_items()}
        self.path: str = ws.request.path
        self.query: dict[str, str] = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        self.opened_at = time.monotonic()
        self.received: list[dict] = []
        self.received_at: list[float] = []
        self.sent: list[Any] = []              # every message this server sent, in order
        self.validation_errors: list[str] = []
        self.protocol_errors: list[str] = []
        self.server_errors: list[str] = []      # bugs in this module, kept apart from the client's
        self.session: dict = {}
        self.effective_session: dict = _default_openai_session(self.query.get("model", OPENAI_MODEL)) \
            if self.kind == "openai" else {}
        self.setup_received = False
        self.ready = False
        self.closed = False
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.sent_audio_ms: dict[str, int] = {}
        self.function_outputs: dict[str, str] = {}
        self._audio: list[tuple[float, bytes]] = []
        self._input_bytes = 0
        self._sent_audio: dict[str, tuple[int, int]] = {}   # item id -> (bytes, bytes per ms)
        self._function_calls: dict[str, str] = {}          # call id -> name
        self._waited: dict[str, set[int]] = collections.defaultdict(set)
        self._reported: set[str] = set()
        self._active: _Active | None = None
        self._turn_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._last_item_id: str | None = None
        self._user_item_id: str | None = None
        self._speech_stop_ms = 0
        self._conversation_id = _new_id("conv_")
        self._turns = 0
        self._message_invalid = False

    # --- formats

    @property
    def input_format(self) -> Format:
        if self.kind == "gemini":
            return ("pcm", 16000)
        return _format_of(((self.effective_session.get("audio") or {}).get("input") or {}).get("format"))

    @property
    def output_format(self) -> Format:
        if self.kind == "gemini":
            return ("pcm", 24000)
        return _format_of(((self.effective_session.get("audio") or {}).get("output") or {}).get("format"))

    # --- reading what the client sent

    def caller_audio(self) -> bytes:
        """Every input audio chunk received, decoded, concatenated."""
        with self._lock:
            return b"".join(b for _, b in self._audio)

    def caller_audio_chunks(self) -> list[tuple[float, bytes]]:
        with self._lock:
            return list(self._audio)

    def _key(self, msg: dict) -> str:
        if self.kind == "openai":
            return str(msg.get("type"))
        return ",".join(_camel(k) for k in msg) or "{}"

    def _matches(self, msg: dict, type_or_key: str) -> bool:
        if self.kind == "openai":
            return msg.get("type") == type_or_key
        return type_or_key in msg or _snake(type_or_key) in msg

    def messages(self, type_or_key: str) -> list[dict]:
        """OpenAI: the messages of that "type"; Gemini: those with that top-level key."""
        with self._lock:
            return [m for m in self.received if self._matches(m, type_or_key)]

    def wait_message(self, type_or_key: str, predicate: Callable[[dict], bool] | None = None,
                     timeout: float = 5.0) -> dict:
        """The first matching message not yet returned by an earlier
        wait_message for the same type; AssertionError (with a summary of what
        was received) on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                taken = self._waited[type_or_key]
                for i, m in enumerate(self.received):
                    if i not in taken and self._matches(m, type_or_key) and (predicate is None or predicate(m)):
                        taken.add(i)
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
        raise AssertionError(f"no {type_or_key!r} message{' matching the predicate' if predicate else ''} "
                             f"within {timeout} s\n{self.describe()}")

    def wait_closed(self, timeout: float = 5.0) -> int | None:
        """Wait for the connection to end; the client's close code (None if it sent no close frame)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"connection still open after {timeout} s\n{self.describe()}")
                self._lock.wait(left)
            return self.close_code

    def wait_function_output(self, call_id: str, timeout: float = 10.0) -> str:
        """OpenAI: the output of the function_call_output for call_id; Gemini:
        toolResponse.functionResponses[id == call_id].response as JSON (or the
        value itself when "result" or "output" is its only key)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while call_id not in self.function_outputs:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no function output for {call_id!r} within {timeout} s\n{self.describe()}")
                self._lock.wait(left)
            return self.function_outputs[call_id]

    def describe(self, last: int = 12) -> str:
        """A summary of this connection for assertion messages."""
        with self._lock:
            counts = collections.Counter(self._key(m) for m in self.received)
            lines = [f"{self.kind} connection #{self.index} path={self.path} ready={self.ready} "
                     f"closed={self.closed} close_code={self.close_code}",
                     f"received {len(self.received)} messages: {dict(counts)}"]
            if self.received:
                lines.append(f"last {min(last, len(self.received))}:")
                lines += [f"  {_short(m)}" for m in self.received[-last:]]
            for name in ("validation_errors", "protocol_errors", "server_errors"):
                errs = getattr(self, name)
                if errs:
                    lines.append(f"{name}:")
                    lines += [f"  {e}" for e in errs[:20]]
        return "\n".join(lines)

    def assert_clean(self) -> None:
        if self.validation_errors or self.protocol_errors or self.server_errors:
            raise AssertionError(f"the client misused the {self.kind} protocol\n{self.describe()}")

    # --- scripted model behaviour (test thread)

    def say(self, audio: bytes, *, item_id: str | None = None, transcript: str | None = None,
            chunk_ms: int = 100, pace: float = 0.0) -> str:
        """One whole spoken response; blocks until it is sent (or interrupted).
        OpenAI: response.created, response.output_item.added, conversation.item.added,
        response.content_part.added, (response.output_audio.delta, interleaved with
        response.output_audio_transcript.delta when transcript) ×N,
        response.output_audio.done, response.output_audio_transcript.done,
        response.content_part.done, response.output_item.done,
        conversation.item.done, response.done. Gemini: serverContent.modelTurn
        inlineData parts ×N (with serverContent.outputTranscription), then
        serverContent.generationComplete, serverContent.turnComplete (+usageMetadata).
        `audio` is in output_format; pace 0 sends at once, 1.0 in real time."""
        return self.start_say(audio, item_id=item_id, transcript=transcript, chunk_ms=chunk_ms, pace=pace).wait()

    def start_say(self, audio: bytes, *, item_id: str | None = None, transcript: str | None = None,
                  chunk_ms: int = 100, pace: float = 0.0) -> SayHandle:
        fmt = self.output_format
        bpm = bytes_per_ms(fmt)
        if len(audio) % (bpm // (fmt[1] // 1000)):
            raise ValueError(f"audio length {len(audio)} is not whole samples of {fmt}")
        if chunk_ms <= 0:
            raise ValueError("chunk_ms must be positive")
        item_id = item_id or (_new_id("item_") if self.kind == "openai" else f"turn_{self._next_turn()}")
        assert self.server._loop is not None
        fut = asyncio.run_coroutine_threadsafe(
            self._track(self._say(audio, item_id, transcript, chunk_ms, pace, fmt)), self.server._loop)
        duration_s = len(audio) / bpm / 1000
        return SayHandle(item_id, fut, 10.0 + duration_s * max(pace, 0.0) * 1.5)

    def speech_started(self, *, item_id: str | None = None, audio_start_ms: int | None = None) -> None:
        """OpenAI input_audio_buffer.speech_started {audio_start_ms (default: the
        caller audio received so far), item_id}, then — when a response is in
        progress and turn detection interrupts responses — its cancellation
        (response.output_audio.done … response.done status "cancelled", reason
        "turn_detected"). Gemini: a say in progress stops, serverContent
        {interrupted: true} (then {turnComplete: true} if one was stopped)."""
        self.server._call(self._speech_started(item_id, audio_start_ms), 10.0)

    def speech_stopped(self) -> None:
        """OpenAI input_audio_buffer.speech_stopped {audio_end_ms, item_id} and
        input_audio_buffer.committed {item_id, previous_item_id}; Gemini: nothing."""
        self.server._call(self._speech_stopped(), 10.0)

    def caller_transcript(self, text: str) -> None:
        """OpenAI conversation.item.input_audio_transcription.completed; Gemini
        serverContent.inputTranscription {text}."""
        if self.kind == "openai":
            item = self._user_item_id or _new_id("item_")
            self._send_sync(self._ev("conversation.item.input_audio_transcription.completed", item_id=item,
                                     content_index=0, transcript=text,
                                     usage={"type": "duration", "seconds": round(self._input_ms() / 1000, 3)}))
        else:
            self._send_sync({"serverContent": {"inputTranscription": {"text": text}}})

    def function_call(self, name: str, args: dict, *, call_id: str | None = None) -> str:
        """OpenAI: response.created, response.output_item.added (function_call),
        conversation.item.added, response.function_call_arguments.delta,
        response.function_call_arguments.done {call_id, name, arguments},
        response.output_item.done, conversation.item.done, response.done.
        Gemini: toolCall {functionCalls: [{id, name, args}]}. Returns the call id."""
        if self.kind == "openai":
            call_id = call_id or _new_id("call_", 16)
        else:
            call_id = call_id or f"function-call-{random.randrange(10**18, 10**19)}"
        self.server._call(self._track(self._function_call(name, args, call_id)), 10.0)
        return call_id

    def cancel_function_calls(self, call_ids: list[str]) -> None:
        """Gemini toolCallCancellation {ids}; OpenAI: nothing."""
        if self.kind == "gemini":
            self._send_sync({"toolCallCancellation": {"ids": list(call_ids)}})

    def idle_timeout(self) -> None:
        """OpenAI input_audio_buffer.timeout_triggered {audio_start_ms, audio_end_ms, item_id}; Gemini: nothing."""
        if self.kind == "openai":
            self._send_sync(self._ev("input_audio_buffer.timeout_triggered", audio_start_ms=self._speech_stop_ms,
                                     audio_end_ms=max(self._input_ms(), self._speech_stop_ms),
                                     item_id=_new_id("item_")))

    def go_away(self, time_left_s: int = 10) -> None:
        """Gemini goAway {timeLeft: "10s"}; OpenAI: nothing."""
        if self.kind == "gemini":
            self._send_sync({"goAway": {"timeLeft": f"{time_left_s}s"}})

    def resumption_update(self, handle: str) -> None:
        """Gemini sessionResumptionUpdate {newHandle, resumable: true}; OpenAI: nothing."""
        if self.kind == "gemini":
            self._send_sync({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})

    def error(self, message: str, code: str = "server_error", *, error_type: str | None = None,
              param: str | None = None) -> None:
        """OpenAI error event {error: {type, code, message, param, event_id}}.
        Gemini has no error message: it ends the connection, so this closes
        with 1011 and the message as reason."""
        if self.kind == "openai":
            etype = error_type or ("server_error" if code == "server_error" else "invalid_request_error")
            self._send_sync(self._ev("error", error={"type": etype, "code": code, "message": message,
                                                     "param": param, "event_id": None}))
        else:
            self.close(1011, message.encode()[:120].decode("utf-8", "ignore"))

    def drop(self) -> None:
        """Close the TCP connection abruptly (no close frame)."""
        self.server._call(self._drop(), 5.0)
        self.wait_closed(5.0)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """A websocket close handshake with `code`."""
        self.server._call(self._close(code, reason), 10.0)
        self.wait_closed(5.0)

    def send_raw(self, obj: dict | str | bytes) -> None:
        """A dict as JSON (OpenAI text frame, Gemini binary frame), a str as a
        text frame, bytes as a binary frame, untouched."""
        self._send_sync(obj)

    def answer_setup(self, *, then_say: bytes | None = None) -> None:
        """Answer the session set-up by hand (with server.auto_answer = False):
        OpenAI session.updated with the effective session, Gemini setupComplete.
        `then_say`: a response (output_format audio, sent at once) follows in
        the same event-loop step, before the client can act on the answer."""
        async def answer() -> None:
            await self._answer_setup()
            if then_say is not None:
                item_id = _new_id("item_") if self.kind == "openai" else f"turn_{self._next_turn()}"
                await self._say(then_say, item_id, None, 100, 0.0, self.output_format)
        self.server._call(answer(), 10.0)

    # --- internals (event loop thread)

    def _next_turn(self) -> int:
        with self._lock:
            self._turns += 1
            return self._turns

    def _input_ms(self) -> int:
        return self._input_bytes // bytes_per_ms(self.input_format)

    def _ev(self, type_: str, **fields: Any) -> dict:
        return {"type": type_, "event_id": _new_id("event_"), **fields}

    def _send_sync(self, obj: Any) -> None:
        self.server._call(self._send(obj), 5.0)

    async def _track(self, coro: Any) -> Any:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            return await coro
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _send(self, obj: Any) -> bool:
        if self.closed:
            return False
        if isinstance(obj, dict):
            text = json.dumps(obj)
            frame: str | bytes = text.encode() if self.kind == "gemini" else text
        else:
            frame = obj
        try:
            await self._ws.send(frame)
        except ConnectionClosed:
            return False
        with self._lock:
            self.sent.append(obj)
        return True

    def _protocol_error(self, text: str, once: str | None = None) -> None:
        with self._lock:
            if once is not None:
                if once in self._reported:
                    return
                self._reported.add(once)
            self.protocol_errors.append(text)
            self._lock.notify_all()

    async def _on_open(self) -> None:
        if self.kind == "openai":
            if "realtime=v1" in self.headers.get("openai-beta", ""):
                self._protocol_error("the OpenAI-Beta: realtime=v1 header selects the beta protocol; "
                                     "a GA client must not send it")
            if self.server.mode != "silent":
                await self._send(self._ev("session.created", session=self.effective_session))

    def _on_closed(self) -> None:
        rcvd = self._ws.protocol.close_rcvd
        with self._lock:
            self.closed = True
            self.close_code = rcvd.code if rcvd is not None else None
            self.close_reason = rcvd.reason if rcvd is not None else None
            self._lock.notify_all()
        if self._active is not None:
            self._active.cancel.set()

    async def _on_frame(self, frame: str | bytes) -> None:
        now = time.monotonic()
        if isinstance(frame, bytes):
            if self.kind == "openai":
                self._protocol_error("OpenAI client events go in text frames, got a binary frame", once="binary")
            try:
                text = frame.decode("utf-8")
            except UnicodeDecodeError:
                with self._lock:
                    self.validation_errors.append(f"non-UTF-8 binary frame of {len(frame)} bytes")
                    self._lock.notify_all()
                return
        else:
            text = frame
        try:
            msg = json.loads(text)
        except ValueError as e:
            with self._lock:
                self.validation_errors.append(f"non-JSON frame ({e}): {text[:80]!r}")
                self._lock.notify_all()
            return
        if not isinstance(msg, dict):
            with self._lock:
                self.validation_errors.append(f"frame is JSON but not an object: {text[:80]!r}")
                self._lock.notify_all()
            return
        try:
            errors = validate_openai(msg) if self.kind == "openai" else validate_gemini(text)
        except Exception as e:  # noqa: BLE001 - never crash on a bad message
            errors = [f"validator failed: {e!r}"]
        self._message_invalid = bool(errors)
        with self._lock:
            self.received.append(msg)
            self.received_at.append(now)
            self.validation_errors.extend(f"{self._key(msg)}: {e}" for e in errors)
            self._lock.notify_all()
        try:
            if self.kind == "openai":
                await self._dispatch_openai(msg, len(self.received) - 1, now)
            else:
                await self._dispatch_gemini(msg, now)
        except ConnectionClosed:
            raise
        except Exception as e:  # noqa: BLE001
            with self._lock:
                self.server_errors.append(f"handling {_short(msg)}: {e!r}")
                self._lock.notify_all()

    def _add_audio(self, data: Any, now: float, label: str) -> None:
        try:
            chunk = _b64decode(data, urlsafe_ok=self.kind == "gemini")
        except ValueError as e:
            if not self._message_invalid:     # the SDK type may have said so already
                with self._lock:
                    self.validation_errors.append(f"{label}: audio is not {'' if self.kind == 'gemini' else 'standard '}"
                                                  f"base64 ({e})")
                    self._lock.notify_all()
            return
        if self.input_format[0] == "pcm" and len(chunk) % 2:
            self._protocol_error(f"{label}: odd number of bytes ({len(chunk)}) of 16-bit PCM", once="odd")
        with self._lock:
            self._audio.append((now, chunk))
            self._input_bytes += len(chunk)
            self._lock.notify_all()

    async def _answer_setup(self) -> None:
        if self.kind == "openai":
            await self._send(self._ev("session.updated", session=self.effective_session))
        else:
            await self._send({"setupComplete": {}})
        with self._lock:
            self.ready = True
            self._lock.notify_all()

    # OpenAI

    async def _dispatch_openai(self, msg: dict, index: int, now: float) -> None:
        t = msg.get("type")
        if t == "session.update":
            session = msg.get("session")
            if not isinstance(session, dict):
                return
            if session.get("type") != "realtime":
                self._protocol_error(f"session.update with session.type {session.get('type')!r}, not 'realtime'")
            with self._lock:
                self.session = session
                self.setup_received = True
                self.effective_session = _merge_session(self.effective_session, session)
            if self.server.auto_answer and self.server.mode != "silent":
                await self._answer_setup()
        elif t == "input_audio_buffer.append":
            if not self.setup_received:
                self._protocol_error("input_audio_buffer.append before any session.update "
                                     "(the audio would be taken in the default format)", once="early-audio")
            self._add_audio(msg.get("audio"), now, "input_audio_buffer.append")
        elif t == "input_audio_buffer.commit":
            item = _new_id("item_")
            await self._send(self._ev("input_audio_buffer.committed", previous_item_id=self._last_item_id,
                                      item_id=item))
            self._last_item_id = item
        elif t == "input_audio_buffer.clear":
            await self._send(self._ev("input_audio_buffer.cleared"))
        elif t == "conversation.item.create":
            await self._on_item_create(msg, index)
        elif t == "conversation.item.truncate":
            await self._on_truncate(msg)
        elif t == "conversation.item.delete":
            await self._send(self._ev("conversation.item.deleted", item_id=msg.get("item_id")))
        elif t == "response.create":
            if self._active is not None:
                self._protocol_error("response.create while a response is in progress")
                await self._send(self._ev("error", error={
                    "type": "invalid_request_error", "code": "conversation_already_has_active_response",
                    "message": "Conversation already has an active response in progress.",
                    "param": None, "event_id": msg.get("event_id")}))
        elif t == "response.cancel":
            if self._active is not None:
                await self._interrupt("client_cancelled")
            else:
                await self._send(self._ev("error", error={
                    "type": "invalid_request_error", "code": "response_cancel_not_active",
                    "message": "Cancellation failed: no active response found",
                    "param": None, "event_id": msg.get("event_id")}))
        elif t == "output_audio_buffer.clear":
            self._protocol_error("output_audio_buffer.clear is for WebRTC/SIP sessions, not websockets")

    async def _on_item_create(self, msg: dict, index: int) -> None:
        item = msg.get("item")
        if not isinstance(item, dict):
            return
        if item.get("type") == "function_call_output":
            call_id = item.get("call_id")
            if call_id not in self._function_calls:
                self._protocol_error(f"function_call_output for call_id {call_id!r}, which this server never sent")
            with self._lock:
                self.function_outputs[str(call_id)] = item.get("output") if isinstance(item.get("output"), str) \
                    else json.dumps(item.get("output"))
                self._lock.notify_all()
            asyncio.get_running_loop().call_later(FUNCTION_OUTPUT_GRACE_S, self._check_response_create,
                                                  index, call_id)
        full = {"id": item.get("id") or _new_id("item_"), "object": "realtime.item", "status": "completed", **item}
        await self._send(self._ev("conversation.item.added", previous_item_id=self._last_item_id, item=full))
        await self._send(self._ev("conversation.item.done", previous_item_id=self._last_item_id, item=full))
        self._last_item_id = full["id"]

    def _check_response_create(self, index: int, call_id: Any) -> None:
        with self._lock:
            later = self.received[index + 1:]
        if not any(m.get("type") == "response.create" for m in later):
            self._protocol_error(f"function_call_output for {call_id!r} not followed by response.create "
                                 f"within {FUNCTION_OUTPUT_GRACE_S:g} s (the model waits for it)")

    async def _on_truncate(self, msg: dict) -> None:
        item_id, end_ms, index = msg.get("item_id"), msg.get("audio_end_ms"), msg.get("content_index")
        sent = self._sent_audio.get(item_id) if isinstance(item_id, str) else None
        problem = err = None
        if sent is None:
            problem = f"truncate names item {item_id!r}, which this server never sent audio for"
            err = f"Item with item_id '{item_id}' not found."
        elif index != 0:
            problem = f"truncate of {item_id!r} with content_index {index!r}: the audio is content 0"
            err = f"Invalid content_index: {index}"
        elif isinstance(end_ms, int) and end_ms * sent[1] > sent[0] + sent[1] - 1:
            problem = (f"truncate of {item_id!r} at audio_end_ms={end_ms}, beyond the "
                       f"{sent[0] / sent[1]:g} ms of audio sent for it")
            err = f"Audio content of {sent[0] // sent[1]}ms is already shorter than {end_ms}ms"
        if problem is not None:
            self._protocol_error(problem)
            await self._send(self._ev("error", error={"type": "invalid_request_error", "code": "invalid_value",
                                                      "message": err, "param": None,
                                                      "event_id": msg.get("event_id")}))
            return
        await self._send(self._ev("conversation.item.truncated", item_id=item_id, content_index=index,
                                  audio_end_ms=end_ms))

    def _response_obj(self, resp_id: str, status: str, output: list, reason: str | None = None) -> dict:
        out = self.effective_session.get("audio", {}).get("output", {})
        obj = {"object": "realtime.response", "id": resp_id, "status": status,
               "status_details": None, "output": output, "conversation_id": self._conversation_id,
               "output_modalities": ["audio"], "max_output_tokens": "inf",
               "audio": {"output": {"format": _format_obj(self.output_format), "voice": out.get("voice", "marin")}},
               "usage": None, "metadata": None}
        if status != "in_progress":
            obj["usage"] = {"total_tokens": 120, "input_tokens": 80, "output_tokens": 40,
                            "input_token_details": {"text_tokens": 60, "audio_tokens": 20, "cached_tokens": 0},
                            "output_token_details": {"text_tokens": 10, "audio_tokens": 30}}
        if status == "cancelled":
            obj["status_details"] = {"type": "cancelled", "reason": reason}
        elif status == "completed":
            obj["status_details"] = None
        return obj

    async def _interrupt(self, reason: str) -> bool:
        active = self._active
        if active is None:
            return False
        active.reason = reason
        active.cancel.set()
        try:
            await asyncio.wait_for(active.finished.wait(), 10.0)
        except (asyncio.TimeoutError, TimeoutError):
            pass
        return True

    async def _say(self, audio: bytes, item_id: str, transcript: str | None, chunk_ms: int, pace: float,
                   fmt: Format) -> bool:
        async with self._turn_lock:
            active = self._active = _Active()
            try:
                return await (self._say_openai if self.kind == "openai" else self._say_gemini)(
                    audio, item_id, transcript, chunk_ms, pace, fmt, active)
            finally:
                self._active = None
                active.finished.set()

    async def _paced_chunks(self, audio: bytes, chunk_ms: int, pace: float, fmt: Format, item_id: str,
                            active: _Active) -> typing.AsyncIterator[tuple[int, int, bytes]]:
        """(index, count, chunk) of the audio, at `pace`, stopping when cancelled."""
        bpm = bytes_per_ms(fmt)
        size = chunk_ms * bpm
        chunks = [audio[i:i + size] for i in range(0, len(audio), size)]
        self._sent_audio[item_id] = (0, bpm)
        self.sent_audio_ms[item_id] = 0
        t0 = time.monotonic()
        for i, chunk in enumerate(chunks):
            if active.cancel.is_set() or self.closed:
                return
            yield i, len(chunks), chunk
            sent_bytes = self._sent_audio[item_id][0] + len(chunk)
            self._sent_audio[item_id] = (sent_bytes, bpm)
            with self._lock:
                self.sent_audio_ms[item_id] = sent_bytes // bpm
            if pace > 0 and i + 1 < len(chunks):
                delay = t0 + (i + 1) * chunk_ms / 1000 * pace - time.monotonic()
                if delay > 0:
                    try:
                        await asyncio.wait_for(active.cancel.wait(), delay)
                    except (asyncio.TimeoutError, TimeoutError):
                        pass

    @staticmethod
    def _pieces(transcript: str | None, n_chunks: int) -> dict[int, list[str]]:
        """Transcript deltas (words) spread over the audio chunks: chunk index -> pieces."""
        if not transcript:
            return {}
        words = re.findall(r"\S+\s*", transcript) or [transcript]
        out: dict[int, list[str]] = collections.defaultdict(list)
        for k, w in enumerate(words):
            out[min(max(n_chunks - 1, 0), k * max(n_chunks, 1) // len(words))].append(w)
        return out

    async def _say_openai(self, audio: bytes, item_id: str, transcript: str | None, chunk_ms: int, pace: float,
                          fmt: Format, active: _Active) -> bool:
        resp_id = _new_id("resp_")
        loc = {"response_id": resp_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        item = {"id": item_id, "object": "realtime.item", "type": "message", "status": "in_progress",
                "role": "assistant", "content": []}
        await self._send(self._ev("response.created", response=self._response_obj(resp_id, "in_progress", [])))
        await self._send(self._ev("response.output_item.added", response_id=resp_id, output_index=0, item=item))
        await self._send(self._ev("conversation.item.added", previous_item_id=self._last_item_id, item=item))
        await self._send(self._ev("response.content_part.added", **loc, part={"type": "audio", "transcript": ""}))
        n = -(-len(audio) // (chunk_ms * bytes_per_ms(fmt)))
        pieces = self._pieces(transcript, n)
        said = ""
        async for i, _, chunk in self._paced_chunks(audio, chunk_ms, pace, fmt, item_id, active):
            await self._send(self._ev("response.output_audio.delta", **loc,
                                      delta=base64.b64encode(chunk).decode("ascii")))
            for p in pieces.get(i, []):
                said += p
                await self._send(self._ev("response.output_audio_transcript.delta", **loc, delta=p))
        if n == 0 and transcript:
            said = transcript
            await self._send(self._ev("response.output_audio_transcript.delta", **loc, delta=transcript))
        cancelled = active.cancel.is_set() and not self.closed
        await self._send(self._ev("response.output_audio.done", **loc))
        if transcript is not None:
            await self._send(self._ev("response.output_audio_transcript.done", **loc, transcript=said))
        await self._send(self._ev("response.content_part.done", **loc, part={"type": "audio", "transcript": said}))
        done_item = {**item, "status": "incomplete" if cancelled else "completed",
                     "content": [{"type": "output_audio", "transcript": said}]}
        await self._send(self._ev("response.output_item.done", response_id=resp_id, output_index=0, item=done_item))
        await self._send(self._ev("conversation.item.done", previous_item_id=self._last_item_id, item=done_item))
        self._last_item_id = item_id
        status = "cancelled" if cancelled else "completed"
        await self._send(self._ev("response.done", response=self._response_obj(resp_id, status, [done_item],
                                                                                 active.reason)))
        return cancelled

    async def _say_gemini(self, audio: bytes, item_id: str, transcript: str | None, chunk_ms: int, pace: float,
                          fmt: Format, active: _Active) -> bool:
        n = -(-len(audio) // (chunk_ms * bytes_per_ms(fmt)))
        pieces = self._pieces(transcript, n)
        async for i, _, chunk in self._paced_chunks(audio, chunk_ms, pace, fmt, item_id, active):
            await self._send({"serverContent": {"modelTurn": {"parts": [{"inlineData": {
                "mimeType": GEMINI_OUTPUT_MIME, "data": base64.b64encode(chunk).decode("ascii")}}]}}})
            for p in pieces.get(i, []):
                await self._send({"serverContent": {"outputTranscription": {"text": p}}})
        if n == 0 and transcript:
            await self._send({"serverContent": {"outputTranscription": {"text": transcript}}})
        if active.cancel.is_set():
            return not self.closed   # the interrupter sends interrupted / turnComplete
        await self._send({"serverContent": {"generationComplete": True}})
        await self._send({"serverContent": {"turnComplete": True},
                          "usageMetadata": {"promptTokenCount": 80, "responseTokenCount": 40, "totalTokenCount": 120}})
        return False

    async def _function_call(self, name: str, args: dict, call_id: str) -> None:
        self._function_calls[call_id] = name
        if self.kind == "gemini":
            await self._send({"toolCall": {"functionCalls": [{"id": call_id, "name": name, "args": args}]}})
            return
        async with self._turn_lock:
            active = self._active = _Active()
            try:
                resp_id, item_id = _new_id("resp_"), _new_id("item_")
                arguments = json.dumps(args)
                item = {"id": item_id, "object": "realtime.item", "type": "function_call", "status": "in_progress",
                        "name": name, "call_id": call_id, "arguments": ""}
                loc = {"response_id": resp_id, "item_id": item_id, "output_index": 0, "call_id": call_id}
                await self._send(self._ev("response.created",
                                          response=self._response_obj(resp_id, "in_progress", [])))
                await self._send(self._ev("response.output_item.added", response_id=resp_id, output_index=0,
                                          item=item))
                await self._send(self._ev("conversation.item.added", previous_item_id=self._last_item_id,
                                          item=item))
                await self._send(self._ev("response.function_call_arguments.delta", **loc, delta=arguments))
                await self._send(self._ev("response.function_call_arguments.done", **loc, name=name,
                                          arguments=arguments))
                done_item = {**item, "status": "completed", "arguments": arguments}
                await self._send(self._ev("response.output_item.done", response_id=resp_id, output_index=0,
                                          item=done_item))
                await self._send(self._ev("conversation.item.done", previous_item_id=self._last_item_id,
                                          item=done_item))
                self._last_item_id = item_id
                await self._send(self._ev("response.done",
                                          response=self._response_obj(resp_id, "completed", [done_item])))
            finally:
                self._active = None
                active.finished.set()

    async def _speech_started(self, item_id: str | None, audio_start_ms: int | None) -> None:
        if self.kind == "gemini":
            stopped = await self._interrupt("turn_detected")
            await self._send({"serverContent": {"interrupted": True}})
            if stopped:
                await self._send({"serverContent": {"turnComplete": True}})
            return
        item_id = item_id or _new_id("item_")
        self._user_item_id = item_id
        start = self._input_ms() if audio_start_ms is None else audio_start_ms
        await self._send(self._ev("input_audio_buffer.speech_started", audio_start_ms=start, item_id=item_id))
        td = ((self.effective_session.get("audio") or {}).get("input") or {}).get("turn_detection")
        if isinstance(td, dict) and td.get("interrupt_response", True) is not False:
            await self._interrupt("turn_detected")

    async def _speech_stopped(self) -> None:
        if self.kind == "gemini":
            return
        item_id = self._user_item_id or _new_id("item_")
        self._user_item_id = item_id
        self._speech_stop_ms = self._input_ms()
        await self._send(self._ev("input_audio_buffer.speech_stopped", audio_end_ms=self._speech_stop_ms,
                                  item_id=item_id))
        await self._send(self._ev("input_audio_buffer.committed", previous_item_id=self._last_item_id,
                                  item_id=item_id))
        self._last_item_id = item_id

    async def _drop(self) -> None:
        self._ws.transport.abort()

    async def _close(self, code: int, reason: str) -> None:
        await self._ws.close(code, reason)

    # Gemini

    async def _dispatch_gemini(self, msg: dict, now: float) -> None:
        key = next(iter(msg), "")
        key = _camel(key)
        if key != "setup" and not self.setup_received:
            self._protocol_error(f"{key} before setup (setup must be the first message)", once="before-setup")
        elif key != "setup" and not self.ready:
            self._protocol_error(f"{key} before setupComplete (the client must wait for it)",
                                 once="before-complete")
        if key == "setup":
            if self.setup_received:
                self._protocol_error("a second setup message")
            setup = msg.get("setup")
            with self._lock:
                self.session = setup if isinstance(setup, dict) else {}
                self.setup_received = True
            model = self.session.get("model")
            if not (isinstance(model, str) and model.startswith("models/")):
                self._protocol_error(f"setup.model {model!r} is not of the form 'models/NAME'")
            if self.server.auto_answer and self.server.mode != "silent":
                await self._answer_setup()
        elif key == "realtimeInput":
            ri = _g(msg, "realtimeInput")
            audio = _g(ri, "audio")
            if isinstance(audio, dict):
                self._check_gemini_mime(_g(audio, "mimeType"))
                self._add_audio(_g(audio, "data"), now, "realtimeInput.audio")
            chunks = _g(ri, "mediaChunks")
            if isinstance(chunks, list):
                self._protocol_error("realtimeInput.mediaChunks is deprecated: use realtimeInput.audio",
                                     once="mediaChunks")
                for c in chunks:
                    if isinstance(c, dict) and str(_g(c, "mimeType")).startswith("audio/"):
                        self._check_gemini_mime(_g(c, "mimeType"))
                        self._add_audio(_g(c, "data"), now, "realtimeInput.mediaChunks")
        elif key == "toolResponse":
            for r in _g(_g(msg, "toolResponse"), "functionResponses") or []:
                if not isinstance(r, dict):
                    continue
                call_id = r.get("id")
                if call_id not in self._function_calls:
                    self._protocol_error(f"functionResponse for id {call_id!r}, which this server never sent")
                elif r.get("name") != self._function_calls[call_id]:
                    self._protocol_error(f"functionResponse {call_id!r} names {r.get('name')!r}, "
                                         f"the call was {self._function_calls[call_id]!r}")
                response = r.get("response")
                if isinstance(response, dict) and len(response) == 1 and next(iter(response)) in ("result", "output"):
                    value = next(iter(response.values()))
                    out = value if isinstance(value, str) else json.dumps(value)
                else:
                    out = json.dumps(response)
                with self._lock:
                    self.function_outputs[str(call_id)] = out
                    self._lock.notify_all()

    def _check_gemini_mime(self, mime: Any) -> None:
        norm = str(mime).replace(" ", "").lower()
        if norm != GEMINI_INPUT_MIME:
            self._protocol_error(f"caller audio mimeType {mime!r}, expected {GEMINI_INPUT_MIME!r}", once="mime")


def _default_openai_session(model: str) -> dict:
    """What session.created carries before any session.update (GA shape)."""
    return {
        "type": "realtime", "object": "realtime.session", "id": _new_id("sess_"), "model": model,
        "output_modalities": ["audio"], "instructions": "You are a helpful assistant.",
        "tools": [], "tool_choice": "auto", "max_output_tokens": "inf", "tracing": None,
        "truncation": "auto", "prompt": None, "expires_at": int(time.time()) + 3600, "include": None,
        "audio": {
            "input": {"format": {"type": "audio/pcm", "rate": 24000}, "transcription": None,
                      "noise_reduction": None,
                      "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                         "silence_duration_ms": 200, "idle_timeout_ms": None,
                                         "create_response": True, "interrupt_response": True}},
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1.0},
        },
    }
