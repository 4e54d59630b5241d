"""Audio helpers for the transcoding benchmark (bench/media_relay.py
--transcode): G.711 µ-law, Opus through libopus with ctypes (no pip
package), tone frames precomputed once, and a tone check on received
payloads.

Nothing here runs per packet during the load except indexing into the
precomputed frames; decoding and the frequency check run after the load on a
sample of the received payloads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from siptool import goertzel_power  # noqa: E402  (the tests' Goertzel filter)

# --- G.711 µ-law ------------------------------------------------------------------

_BIAS, _CLIP = 0x84, 32635


def ulaw_encode(sample: int) -> int:
    """16-bit linear -> µ-law byte (ITU-T G.711)."""
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, _CLIP) + _BIAS
    exp, mask = 7, 0x4000
    while exp > 0 and not (sample & mask):
        exp -= 1
        mask >>= 1
    mant = (sample >> (exp + 3)) & 0x0F
    return ~(sign | (exp << 4) | mant) & 0xFF


def _ulaw_decode(b: int) -> int:
    b = ~b & 0xFF
    t = (((b & 0x0F) << 3) + _BIAS) << ((b & 0x70) >> 4)
    return (_BIAS - t) if b & 0x80 else (t - _BIAS)


ULAW_TABLE = [_ulaw_decode(b) for b in range(256)]


def ulaw_decode(payload: bytes) -> list[float]:
    return [ULAW_TABLE[b] / 32768.0 for b in payload]


# --- tones ---------------------------------------------------------------------------

def tone(freq: float, rate: int, n: int, amplitude: float = 0.3) -> list[int]:
    return [int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)]


def pcmu_tone_frames(freq: float, frames: int = 50, samples: int = 160) -> list[bytes]:
    """`frames` consecutive 20 ms PCMU payloads of a sine (50 = one second;
    with a whole number of cycles per second the cycle replays seamlessly)."""
    s = tone(freq, 8000, frames * samples)
    enc = bytes(ulaw_encode(x) for x in s)
    return [enc[i * samples:(i + 1) * samples] for i in range(frames)]


# --- Opus (libopus via ctypes) -----------------------------------------------------------

OPUS_APPLICATION_VOIP = 2048
OPUS_SET_BITRATE_REQUEST = 4002
OPUS_SET_COMPLEXITY_REQUEST = 4010

_lib = None


def libopus():
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("opus") or "libopus.so.0"
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            lib = ctypes.CDLL("/usr/lib/x86_64-linux-gnu/libopus.so.0")
        lib.opus_encoder_create.restype = ctypes.c_void_p
        lib.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.opus_encode.restype = ctypes.c_int32
        lib.opus_encode.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16), ctypes.c_int,
                                    ctypes.c_char_p, ctypes.c_int32]
        lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.opus_decode.restype = ctypes.c_int
        lib.opus_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32,
                                    ctypes.POINTER(ctypes.c_int16), ctypes.c_int, ctypes.c_int]
        lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_get_version_string.restype = ctypes.c_char_p
        _lib = lib
    return _lib


def opus_version() -> str:
    return libopus().opus_get_version_string().decode()


def opus_tone_frames(freq: float, frames: int = 50, rate: int = 48000, frame_ms: int = 20,
                     bitrate: int | None = None) -> list[bytes]:
    """`frames` consecutive Opus packets (mono, OPUS_APPLICATION_VOIP, libopus
    defaults unless `bitrate`) of a sine, encoded once."""
    lib = libopus()
    err = ctypes.c_int(0)
    enc = lib.opus_encoder_create(rate, 1, OPUS_APPLICATION_VOIP, ctypes.byref(err))
    if not enc or err.value != 0:
        raise RuntimeError(f"opus_encoder_create failed: {err.value}")
    try:
        if bitrate:
            lib.opus_encoder_ctl(ctypes.c_void_p(enc), ctypes.c_int(OPUS_SET_BITRATE_REQUEST), ctypes.c_int32(bitrate))
        n = rate * frame_ms // 1000
        pcm = tone(freq, rate, frames * n)
        out, buf = [], ctypes.create_string_buffer(1500)
        # encode two cycles and keep the second, so the replayed cycle does
        # not start with the encoder's onset
        for rep in range(2):
            for i in range(frames):
                arr = (ctypes.c_int16 * n)(*pcm[i * n:(i + 1) * n])
                ln = lib.opus_encode(enc, arr, n, buf, len(buf))
                if ln < 0:
                    raise RuntimeError(f"opus_encode failed: {ln}")
                if rep == 1:
                    out.append(buf.raw[:ln])
        return out
    finally:
        lib.opus_encoder_destroy(enc)


def opus_decode(payloads: list[bytes], rate: int = 8000) -> list[float]:
    """Decode consecutive Opus packets (one fresh mono decoder at `rate`;
    a stereo stream is downmixed by libopus)."""
    lib = libopus()
    err = ctypes.c_int(0)
    dec = lib.opus_decoder_create(rate, 1, ctypes.byref(err))
    if not dec or err.value != 0:
        raise RuntimeError(f"opus_decoder_create failed: {err.value}")
    try:
        maxn = rate * 120 // 1000
        pcm = (ctypes.c_int16 * maxn)()
        out: list[float] = []
        for p in payloads:
            n = lib.opus_decode(dec, p, len(p), pcm, maxn, 0)
            if n < 0:
                raise ValueError(f"opus_decode failed: {n}")
            out += [x / 32768.0 for x in pcm[:n]]
        return out
    finally:
        lib.opus_decoder_destroy(dec)


def opus_toc(payload: bytes) -> tuple[str, str, bool]:
    """(mode, audio bandwidth, stereo) from an Opus packet's TOC byte (RFC 6716 3.1)."""
    if not payload:
        return ("empty", "-", False)
    config, stereo = payload[0] >> 3, bool(payload[0] & 0x04)
    if config < 12:
        mode, bw = "SILK", ("NB", "MB", "WB")[config // 4]
    elif config < 16:
        mode, bw = "hybrid", ("SWB", "FB")[(config - 12) // 2]
    else:
        mode, bw = "CELT", ("NB", "WB", "SWB", "FB")[(config - 16) // 4]
    return mode, bw, stereo


# --- the tone check --------------------------------------------------------------------

def dominant_frequency(samples: list[float], rate: int = 8000, lo: int = 100, hi: int = 3800) -> tuple[float, float]:
    """(frequency with the most energy, that frequency's share of the signal's
    energy): a 25 Hz Goertzel scan over lo..hi, then 2 Hz steps around the peak."""
    if not samples:
        return 0.0, 0.0
    coarse = [(goertzel_power(samples, rate, f), f) for f in range(lo, hi, 25)]
    p0, f0 = max(coarse)
    fine = [(goertzel_power(samples, rate, f0 + d), f0 + d) for d in range(-24, 25, 2)]
    p, f = max(fine)
    energy = sum(x * x for x in samples) or 1e-12
    # a pure sine of amplitude a over N samples: Goertzel power ~ (a N / 2)^2, energy ~ a^2 N / 2
    share = min(1.0, (2 * p / len(samples)) / energy)
    return float(f), share


def tone_ok(samples: list[float], expect: float, rate: int = 8000, tol: float = 20.0) -> tuple[bool, float, float]:
    """(the dominant frequency is `expect` ± tol and carries most of the energy, frequency, share)"""
    f, share = dominant_frequency(samples, rate)
    return abs(f - expect) <= tol and share >= 0.5, f, share


if __name__ == "__main__":  # self-test: encode/decode both tones locally
    fr = opus_tone_frames(400.0)
    s = opus_decode(fr[:15])[-1600:]
    print("libopus", opus_version(), "opus 400 Hz ->", tone_ok(s, 400.0), "bytes/packet", sum(map(len, fr)) / len(fr),
          opus_toc(fr[0]))
    pf = pcmu_tone_frames(1000.0)
    s = ulaw_decode(b"".join(pf[:10]))
    print("pcmu 1000 Hz ->", tone_ok(s, 1000.0))
    print("pcmu as 400?", tone_ok(s, 400.0)[0], struct.calcsize("!BBHII"))
