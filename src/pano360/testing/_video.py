"""Test videos with audio: a video with a sine tone, and the raw audio packets of a file (to check
that a re-encoded video kept its audio bit for bit). Needs PyAV."""

from __future__ import annotations

import math
import os
from fractions import Fraction

import numpy as np
import torch

__all__ = ["audio_packets", "write_video_with_tone"]


def write_video_with_tone(
    path: str | os.PathLike[str],
    frames: torch.Tensor,
    fps: float = 10,
    *,
    tone_hz: float = 440.0,
    audio: bool = True,
) -> list[bytes]:
    """Write ``frames`` (T, 3, H, W) in [0, 1] as H.264 and, with ``audio``, an AAC sine tone
    (16 kHz mono) lasting as long; return the audio packets' bytes as muxed.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     sent = write_video_with_tone(f"{tmp}/t.mp4", torch.rand(4, 3, 16, 32), fps=8)
        ...     audio_packets(f"{tmp}/t.mp4") == sent and len(sent) > 0
        True
    """
    import av

    rate = 16000
    seconds = len(frames) / fps
    packets = []
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        video.height, video.width = frames.shape[-2:]
        video.pix_fmt = "yuv420p"
        sound = out.add_stream("aac", rate=rate, layout="mono") if audio else None
        for frame in frames:
            rgb = (frame.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).contiguous().numpy()
            for packet in video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        if sound is not None:
            t = np.arange(round(seconds * rate)) / rate
            wave = (0.3 * np.sin(2 * math.pi * tone_hz * t)).astype(np.float32)
            chunks = []
            for start in range(0, len(wave), 1024):
                chunk = av.AudioFrame.from_ndarray(
                    wave[None, start : start + 1024], format="flt", layout="mono"
                )
                chunk.sample_rate = rate
                chunk.pts = start
                chunks.append(chunk)
            for chunk in [*chunks, None]:
                for packet in sound.encode(chunk):
                    packets.append(bytes(packet))
                    out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    return packets


def audio_packets(path: str | os.PathLike[str]) -> list[bytes]:
    """The bytes of every packet of a video file's first audio stream, in stream order."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        stream = container.streams.audio[0]
        return [bytes(p) for p in container.demux(stream) if p.size]
