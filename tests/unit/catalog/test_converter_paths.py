"""Python converters in a catalog's JSON: written by import path, imported when loaded."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from eventwire.catalog import Catalog, CatalogLoadError, load_catalog
from eventwire.catalog.export.serialize import dump_catalog, dumps, loads
from eventwire.catalog.imports import PythonConverter, import_path_of

pytest.importorskip("jsonschema")


class V1(BaseModel):
    n: int


class V2(BaseModel):
    n: int
    double: int


def doubled(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "double": 2 * payload["n"]}


def halved(payload: dict[str, Any]) -> dict[str, Any]:
    return {"n": payload["n"]}


def scored(up: Any = doubled, down: Any = halved) -> Catalog:
    catalog = Catalog("c")
    room = catalog.resource("room")
    room.event("SCORED", V1, description="A score.")
    room.event("SCORED", V2, version=2)
    room.add_converter("SCORED", 1, 2, up)
    room.add_converter("SCORED", 2, 1, down)
    return catalog


def converters(catalog: Catalog) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = dump_catalog(catalog)["resources"]["room"]["events"]["SCORED"][
        "converters"
    ]
    return entries


def test_a_module_level_function_is_written_by_path_and_imported_back() -> None:
    here = __name__
    assert converters(scored()) == [
        {"from": 1, "to": 2, "python": f"{here}:doubled"},
        {"from": 2, "to": 1, "python": f"{here}:halved"},
    ]
    loaded = loads(dumps(scored()))
    spec = loaded.resources["room"].events["SCORED"]
    up = spec.chain.up[1]
    assert isinstance(up, PythonConverter)
    assert up.function is doubled
    assert spec.convert({"n": 2}, 1, 2) == {"n": 2, "double": 4}
    assert dump_catalog(loaded) == dump_catalog(scored())


def _catalog_json(path: str | None) -> bytes:
    dumped = dump_catalog(scored())
    dumped["resources"]["room"]["events"]["SCORED"]["converters"][0]["python"] = path
    return orjson.dumps(dumped)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("gone_app.events:upgrade", "no module named 'gone_app'"),
        (f"{__name__}:missing", "has no attribute 'missing'"),
        (f"{__name__}:V1.model_config", "expected a function, got dict"),
        (f"{__name__}:scored.<locals>.<lambda>", "a lambda or a function defined inside another"),
        ("no-colon", "expected 'module:function'"),
        (None, "exported without an import path"),
    ],
)
def test_a_converter_that_cannot_be_imported_refuses_the_catalog(
    path: str | None, message: str
) -> None:
    with pytest.raises(CatalogLoadError, match=message) as info:
        loads(_catalog_json(path), source="app.json")
    assert str(info.value).startswith("app.json: converter room.SCORED 1 -> 2")


def test_the_refusal_says_how_to_run_without_the_code() -> None:
    with pytest.raises(
        CatalogLoadError, match=r"importable .*, or the converter declared with operations"
    ):
        loads(_catalog_json("gone_app.events:upgrade"))


def test_lambdas_are_written_with_a_path_that_explains_itself() -> None:
    catalog = scored(up=lambda payload: {**payload, "double": 0})
    here = "test_lambdas_are_written_with_a_path_that_explains_itself"
    assert converters(catalog)[0]["python"] == f"{__name__}:{here}.<locals>.<lambda>"
    with pytest.raises(CatalogLoadError, match="define it at module level"):
        loads(dumps(catalog))

    class Callable:
        def __call__(self, payload: Any) -> Any:
            return payload

    assert import_path_of(Callable()) is None
    assert converters(scored(down=Callable()))[1] == {"from": 2, "to": 1, "python": None}


def test_tools_read_a_catalog_without_importing_its_converters(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_bytes(_catalog_json("gone_app.events:upgrade"))
    with pytest.raises(CatalogLoadError, match="no module named 'gone_app'"):
        load_catalog(path)
    loaded = load_catalog(path, import_converters=False)
    spec = loaded.resources["room"].events["SCORED"]
    assert repr(spec.chain.up[1]) == "<PythonConverter gone_app.events:upgrade (not imported)>"
    assert converters(loaded)[0]["python"] == "gone_app.events:upgrade"  # exported as it came
    with pytest.raises(Exception, match="was not imported"):
        spec.convert({"n": 1}, 1, 2)
    assert "gone_app" not in sys.modules
