"""phimask.v1.Reidentify/Detokenize: the one way back to an original value.

Authorized for the `reidentify` role only (access.py), a purpose is required, and
every call is audited with the caller, the count, what was found and the purpose:
never a token or a value.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc
from google.protobuf.message import DecodeError

from ._gen.phimask.v1 import reidentify_pb2 as pb
from .access import Authorizer, current_caller
from .audit import audit
from .errors import CallError
from .receivers import Context, guarded
from .reidentify import MAX_VALUES, MaskedValue, Reidentifier

log = logging.getLogger("phimask.reidentify")
SERVICE = pb.DESCRIPTOR.services_by_name["Reidentify"].full_name
MAX_PURPOSE = 500


def reidentify_handler(reidentifier: Reidentifier, authorizer: Authorizer,
                       redact: Callable[[str], str] = lambda text: text
                       ) -> grpc.GenericRpcHandler:
    """`redact` masks identifiers an analyst may have typed into a purpose ("call back
    617-555-0142") before it reaches the audit trail and spans."""
    method = f"/{SERVICE}/Detokenize"

    async def detokenize(data: bytes, context: Context) -> bytes:
        try:
            request = pb.DetokenizeRequest.FromString(data)
        except DecodeError:
            raise CallError("INVALID_ARGUMENT", "request is not a valid DetokenizeRequest") \
                from None
        purpose = redact(request.purpose.strip())
        if not purpose:
            raise CallError("INVALID_ARGUMENT", "purpose: required (why the originals are "
                            "needed: a ticket or case number); it is audited")
        if len(purpose) > MAX_PURPOSE:
            raise CallError("INVALID_ARGUMENT", f"purpose: longer than {MAX_PURPOSE} characters")
        if len(request.values) > MAX_VALUES:
            raise CallError("RESOURCE_EXHAUSTED", f"values: {len(request.values)} exceed the "
                            f"limit of {MAX_VALUES} a call")
        items = [MaskedValue(v.value, v.field, v.key_id) for v in request.values]
        caller = current_caller()
        who = {"caller": caller.name if caller else "unknown",
               "via": caller.via if caller else "unknown"}
        try:
            revealed = await asyncio.get_running_loop().run_in_executor(
                None, reidentifier.reveal, items)
        except CallError as exc:
            audit("reidentify.failed", **who, count=len(items), purpose=purpose,
                  status=exc.status)
            raise
        found = sum(r.value is not None for r in revealed)
        audit("reidentify", **who, count=len(items), found=found, purpose=purpose,
              fields=sorted({item.field for item in items}))
        response = pb.DetokenizeResponse()
        for result in revealed:
            response.values.add(value=result.value or "", found=result.value is not None,
                                error=result.error)
        return response.SerializeToString()

    return grpc.method_handlers_generic_handler(SERVICE, {
        "Detokenize": grpc.unary_unary_rpc_method_handler(
            guarded(detokenize, authorizer.gate(method))),
    })
