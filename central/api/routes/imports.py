"""``POST /api/v1/orders/import``: a planner's spreadsheet (CSV or XLSX) upserted by order id (docs/api.md, "Import").

The file comes as the raw body (``curl --data-binary @plan.csv``) or as a multipart form field
``file`` (a browser's upload, ``curl -F file=@plan.xlsx``). All or nothing: an error anywhere
answers 422 with every row-level error (row, column, message) and imports nothing; ``dry_run``
answers what would change and changes nothing. A file that is not a spreadsheet answers 400,
one too large 413. The write key's name is the actor of the audit rows (``import``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from central.api.deps import CentralDep, Writer
from central.api.schemas import Problem
from central.imports.plant_time import CatalogTime
from central.imports.rows import ImportRejectedError, parse_orders
from central.imports.sheet import MAX_BYTES, SheetError, read_sheet
from central.progress.orders import ConflictError, OrderError

router = APIRouter(prefix="/api/v1", tags=["orders"])


class RowErrorPublic(BaseModel):
    row: int | None = Field(..., description="the spreadsheet's row number (the header is row 1); null: the file")
    column: str | None
    message: str = Field(..., description="what is wrong and how to fix it")


class ImportRefused(BaseModel):
    detail: str
    errors: list[RowErrorPublic]


class ImportedPublic(BaseModel):
    order: str
    row: int = Field(..., description="the order's first row")
    outcome: str = Field(..., description="created, updated or unchanged")
    operations: int
    changes: list[str] = Field(default_factory=list, description="what an update changed, e.g. due, operation 20: "
                                                                 "machine, operation 30 added")


class ImportResult(BaseModel):
    dry_run: bool
    counts: dict[str, int] = Field(..., description="orders created, updated, unchanged")
    orders: list[ImportedPublic]


async def _content(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BYTES + 64 * 1024:
        raise HTTPException(413, f"the upload has {int(length):,} bytes; at most {MAX_BYTES:,}: split the plan")
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(400, "the form has no file field 'file' (curl -F file=@plan.xlsx)")
        data = await upload.read(MAX_BYTES + 1)
    else:
        buffer = bytearray()
        async for chunk in request.stream():
            buffer += chunk
            if len(buffer) > MAX_BYTES:
                break
        data = bytes(buffer)
    if len(data) > MAX_BYTES:
        raise HTTPException(413, f"the file has more than {MAX_BYTES:,} bytes: split the plan into several files")
    return bytes(data)


@router.post(
    "/orders/import", response_model=ImportResult,
    responses={400: {"model": Problem, "description": "not a CSV or XLSX file"},
               413: {"model": Problem, "description": "the file is too large"},
               422: {"model": ImportRefused, "description": "row-level errors: nothing imported"}},
    summary="Import orders from a CSV or XLSX spreadsheet: all rows or none, upsert by order id, dry run",
    openapi_extra={"requestBody": {"content": {
        "text/csv": {"schema": {"type": "string"}, "example": (
            "order,product,quantity,due,seq,operation,machine,cycle_time,setup_time,job\n"
            "SO-1001,bracket,120,2026-12-04 16:00,10,turn,cnc-01,45,15min,1001\n"
            "SO-1001,,,,20,mill,mill-01,2min,,\n")},
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
            "schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"}}}},
    }}},
)
async def import_orders(
    request: Request, central: CentralDep, who: Writer,
    dry_run: Annotated[bool, Query(description="true: check the file and say what would change; change nothing")]
    = False,
) -> Any:
    data = await _content(request)
    try:
        sheet = read_sheet(data)
        orders = parse_orders(sheet, CatalogTime(central.catalog))
        result = await central.floor.import_orders(orders, by=who, dry_run=dry_run)
    except SheetError as exc:
        raise HTTPException(400, str(exc)) from None
    except ImportRejectedError as exc:
        return JSONResponse({"detail": str(exc), "errors": [e.as_dict() for e in exc.errors]}, status_code=422)
    except OrderError as exc:  # the plan refuses it as a whole (nothing imported)
        raise HTTPException(409 if isinstance(exc, ConflictError) else 400, str(exc)) from None
    return ImportResult(dry_run=dry_run, counts=result.counts(),
                        orders=[ImportedPublic.model_validate(r.as_dict()) for r in result.results])
