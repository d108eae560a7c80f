"""The catalog as an AsyncAPI 3.0 document, from the gateway's point of view.

- one **channel** per resource type, addressed ``gift-list:{id}``, holding
  its messages;
- one **message** per event type and version (``gift-list.ADDED.v1``), whose
  payload is the whole event (the JSON Schema of
  :mod:`eventwire.catalog.export.jsonschema`), with an example;
- one **operation** per channel, ``send``: the gateway sends these events to
  the clients subscribed to the channel's topics;
- ``components.schemas``: every payload type once, and every event version.

The catalog's own facts without an AsyncAPI field (payload mode, reference
URL, statuses and transitions, strictness) travel as ``x-eventwire``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from eventwire.catalog.export.common import SchemaPool, example_event, messages
from eventwire.catalog.export.jsonschema import envelope_schema
from eventwire.catalog.model import Catalog
from eventwire.catalog.resource import Resource

__all__ = ["ASYNCAPI_VERSION", "asyncapi_document"]

ASYNCAPI_VERSION = "3.0.0"

_SCHEMAS = "#/components/schemas/"


def _resource_extension(resource: Resource) -> dict[str, Any]:
    extension: dict[str, Any] = {
        "strict": resource.strict,
        "payload_mode": resource.payload_mode.value,
    }
    if resource.reference_url is not None:
        extension["reference_url"] = resource.reference_url
    if resource.status_enum is not None:
        extension["statuses"] = list(resource.statuses)
    if resource.transitions is not None:
        extension["transitions"] = {k: sorted(v) for k, v in resource.transitions.items()}
    return extension


def _channel(resource: Resource) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "address": f"{resource.name}:{{id}}",
        "title": resource.name,
        "parameters": {"id": {"description": f"which {resource.name}: the topic's identifier"}},
        "messages": {},
        "x-eventwire": _resource_extension(resource),
    }
    if resource.description:
        channel["description"] = resource.description
    return channel


def _servers(server_url: str | None) -> dict[str, Any]:
    if server_url is None:
        return {}
    parts = urlsplit(server_url)
    protocol = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme or "ws")
    server = {"host": parts.netloc, "protocol": protocol, "pathname": parts.path or "/ws"}
    return {"servers": {"gateway": server}}


def asyncapi_document(catalog: Catalog, *, server_url: str | None = None) -> dict[str, Any]:
    """An AsyncAPI 3.0.0 document of every event the catalog declares.

    ``server_url`` (such as ``ws://127.0.0.1:8000/ws``) adds a ``servers`` entry.
    """
    pool = SchemaPool(_SCHEMAS)
    channels = {name: _channel(resource) for name, resource in catalog.resources.items()}
    components_messages: dict[str, Any] = {}
    envelopes: dict[str, Any] = {}
    for resource, spec, version in messages(catalog):
        message_id = spec.message_id(version)
        payload = pool.payload(spec.versions[version].payload)
        envelopes[message_id] = envelope_schema(resource, spec, version, payload)
        message: dict[str, Any] = {
            "name": message_id,
            "title": f"{spec.name} (v{version})",
            "summary": spec.description or spec.name,
            "contentType": "application/json",
            "payload": {"$ref": _SCHEMAS + message_id},
            "x-eventwire": {"event": spec.name, "version": version, "kind": spec.kind},
        }
        example = example_event(resource, spec, version)
        if example is not None:
            message["examples"] = [{"name": f"{message_id}-example", "payload": example}]
        components_messages[message_id] = message
        channels[resource.name]["messages"][message_id] = {
            "$ref": f"#/components/messages/{message_id}"
        }
    operations = {
        f"send-{name}": {
            "action": "send",
            "title": f"{name} events",
            "summary": f"The gateway sends {name} events to the subscribers of its topics.",
            "channel": {"$ref": f"#/channels/{name}"},
            "messages": [
                {"$ref": f"#/channels/{name}/messages/{message_id}"}
                for message_id in channels[name]["messages"]
            ],
        }
        for name in channels
    }
    info: dict[str, Any] = {"title": catalog.title, "version": catalog.version}
    if catalog.description:
        info["description"] = catalog.description
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": f"urn:eventwire:{catalog.name}",
        "info": info,
        **_servers(server_url),
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": {**pool.defs, **envelopes}, "messages": components_messages},
    }
