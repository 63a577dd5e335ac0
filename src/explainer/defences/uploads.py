"""What a social network does to an upload: JPEG re-compression and downscaling."""
from __future__ import annotations


import numpy as np



def jpeg(canvases: np.ndarray, quality: int = 75) -> np.ndarray:
    """Re-compress uint8 canvases as JPEG at ``quality`` (what a social network might do to an upload)."""
    import io

    from PIL import Image
    out = []
    for c in canvases:
        buf = io.BytesIO()
        Image.fromarray(c).save(buf, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
    return np.stack(out) if out else canvases.copy()


def downscale(canvases: np.ndarray, factor: float = 0.5) -> np.ndarray:
    """Shrink uint8 canvases by ``factor`` and bring them back to size (a resized upload)."""
    from PIL import Image
    out = []
    for c in canvases:
        h, w = c.shape[:2]
        small = Image.fromarray(c).resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.LANCZOS)
        out.append(np.asarray(small.resize((w, h), Image.BICUBIC)))
    return np.stack(out) if out else canvases.copy()


# What a social network may do to an upload (fawkes issue #117): name -> canvases -> canvases.
SOCIAL_NETWORK = {
    "as uploaded": lambda c: c,
    "JPEG q90": lambda c: jpeg(c, 90),
    "JPEG q75": lambda c: jpeg(c, 75),
    "JPEG q50": lambda c: jpeg(c, 50),
    "downscaled 1/2": lambda c: downscale(c, 0.5),
}
