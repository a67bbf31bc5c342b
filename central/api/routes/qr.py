"""``GET /api/v1/qr``: a QR code as SVG, drawn by central (segno), for the printable job cards.

The job cards (``/cards``) put one per operation: it holds the scan page's address for that
operation (``/scan?op=<order>/<seq>``), so a phone's own camera app opens the report form, and a
keyboard-wedge scanner types the same text into the scan page. Drawn here rather than by a script
from a CDN: a plant LAN has no internet. Error correction level M survives a smudged card.
"""

from __future__ import annotations

import io
from typing import Annotated

import segno
from fastapi import APIRouter, Query, Response

router = APIRouter(prefix="/api/v1", tags=["pages"])
MAX_TEXT = 400


@router.get("/qr", summary="A QR code (SVG) of a short text, e.g. a job card's scan address",
            response_class=Response, responses={200: {"content": {"image/svg+xml": {}}}})
async def qr(text: Annotated[str, Query(min_length=1, max_length=MAX_TEXT, description="what the code holds")],
             scale: Annotated[int, Query(ge=1, le=20, description="pixels per module")] = 4) -> Response:
    code = segno.make(text, error="m", micro=False)
    out = io.BytesIO()
    code.save(out, kind="svg", scale=scale, border=4, xmldecl=False, nl=False, title=text[:100])
    return Response(out.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})
