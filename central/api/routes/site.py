"""``GET /api/v1/site``: what every page needs to show times as the plant reads them.

The pages show wall-clock times in the plant's timezone (``plant.timezone``), not the browser's: a
planner's laptop, a phone or a TV board may be set to another zone, and a due time must read the
same on all of them. The machine page uses its line's own calendar zone where it has one.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from central.api.deps import CentralDep
from plantpulse import __version__

router = APIRouter(prefix="/api/v1", tags=["pages"])


class Site(BaseModel):
    site: str = Field(..., description="the site (plant) this central serves (`site`), e.g. suzhou-1: every id "
                                       "it answers with is of this site; /api/v1/sites/{site}/... reaches it too")
    timezone: str = Field(..., description="the plant's IANA timezone (plant.timezone), e.g. Asia/Shanghai")
    server_time: float
    version: str


@router.get("/site", response_model=Site, summary="The site, the plant's timezone and central's clock and version")
async def site(central: CentralDep) -> Site:
    return Site(site=central.cfg.site, timezone=central.cfg.plant.timezone, server_time=central.clock(),
                version=__version__)
