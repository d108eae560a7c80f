"""eventwire inside a FastAPI application.

Run it with ``EVENTWIRE_JWT_SECRET=... uvicorn examples.fastapi_app:app``
(``EVENTWIRE_INSECURE=1`` instead, to try it locally without tokens). The
gateway shares the app's port under ``/realtime``: browsers connect to
``ws://HOST/realtime/ws``, and the app's own endpoints publish in-process,
with no HTTP hop.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from eventwire.client import InProcessPublisher
from eventwire.server import Gateway, Settings

gateway = Gateway(Settings())  # EVENTWIRE_* from the environment
publisher = InProcessPublisher(gateway)
app = FastAPI(lifespan=gateway.lifespan)
app.mount("/realtime", gateway.asgi)


class Gift(BaseModel):
    id: str
    name: str
    price: float | None = None


@app.post("/lists/{list_id}/gifts")
async def add_gift(list_id: str, gift: Gift) -> dict[str, Any]:
    """Store the gift (elided), then tell every open tab of this list."""
    published = await publisher.added(f"gift-list:{list_id}", entity_id=gift.id, payload=gift)
    return {"gift": gift.model_dump(), "seq": published.seq}
