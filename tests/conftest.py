"""Shared pytest configuration: hypothesis profile sized for 2-core CI machines."""

import os

import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile("dev", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))


def write_video_with_tone(path, frames, fps=10, *, tone_hz=440.0, seconds=None, audio=True):
    """A test video: ``frames`` (T, 3, H, W) in [0, 1] as H.264 and, with ``audio``, an AAC
    sine tone lasting the video; returns the list of the audio packets' bytes as muxed."""
    import math
    from fractions import Fraction

    import av
    import numpy as np

    rate = 16000
    seconds = len(frames) / fps if seconds is None else seconds
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
            for start in range(0, len(wave), 1024):
                chunk = av.AudioFrame.from_ndarray(
                    wave[None, start : start + 1024], format="flt", layout="mono"
                )
                chunk.sample_rate = rate
                chunk.pts = start
                for packet in sound.encode(chunk):
                    packets.append(bytes(packet))
                    out.mux(packet)
            for packet in sound.encode(None):
                packets.append(bytes(packet))
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    return packets


def audio_packets(path):
    """The bytes of every audio packet of a video file, in stream order."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        stream = container.streams.audio[0]
        return [bytes(p) for p in container.demux(stream) if p.size]
