"""devregistry/openapi.yaml, our own description of the stage endpoints, covers npm's published
one: every path, method, status code, parameter, request field and response field there is in
ours with the same type, and every field it requires, ours requires.

npm's description is read from `../shared/npm-api/stage.yaml` beside the repository (CI has
it); without it those tests skip. Ours may be tighter on responses (closed objects, every field
required, narrower enums) and looser on requests (what the registry accepts beyond it); the
request-side loosenings are listed in LOOSER_REQUESTS and must stay real.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_openapi

from tests.support.openapi import stage_description

ROOT = Path(__file__).resolve().parents[2]
OFFICIAL = ROOT.parent / "shared" / "npm-api" / "stage.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

# Parameters npm requires that the registry does not: npm-otp is needed from 2FA users only.
LOOSER_REQUESTS = {
    ("DELETE /-/stage/{stage-id}", "header npm-otp"),
    ("POST /-/stage/{stage-id}/approve", "header npm-otp"),
}

Node = dict[str, Any]


class Doc:
    """An OpenAPI document whose local `$ref`s can be followed."""

    def __init__(self, doc: Node) -> None:
        self.doc = doc

    def resolve(self, node: Any) -> Any:
        seen = set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            assert isinstance(ref, str), ref
            assert ref.startswith("#/"), f"not a local $ref: {ref!r}"
            assert ref not in seen, f"$ref cycle at {ref}"
            seen.add(ref)
            node = self.doc
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def inline(self, node: Any) -> Any:
        """`node` with every $ref replaced by what it points at (for a schema validator)."""
        node = self.resolve(node)
        if isinstance(node, dict):
            return {key: self.inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [self.inline(value) for value in node]
        return node

    def operations(self) -> Iterator[tuple[str, str, Node]]:
        for path, item in self.doc.get("paths", {}).items():
            for method, operation in self.resolve(item).items():
                if method in METHODS:
                    yield path, method, self.resolve(operation)

    def parameters(self, path: str, operation: Node) -> dict[str, Node]:
        """An operation's parameters (its path's too), keyed `"{in} {name}"`."""
        found = {}
        listed = self.resolve(self.doc["paths"][path]).get("parameters", [])
        for raw in [*listed, *operation.get("parameters", [])]:
            param = self.resolve(raw)
            name = param["name"].lower() if param["in"] == "header" else param["name"]
            found[f"{param['in']} {name}"] = param
        return found


def compare_schemas(
    official: Doc, ours: Doc, theirs: Any, mine: Any, where: str, *, request: bool
) -> list[str]:
    """What `mine` lacks of `theirs`: types, formats, enums, properties, required fields.
    `request`: ours may accept more (enums, nullable, optional fields), never less; otherwise
    ours may answer less (narrower enums, more required fields, closed objects), never more."""
    theirs, mine = official.resolve(theirs), ours.resolve(mine)
    if not isinstance(theirs, dict):
        return []
    if not isinstance(mine, dict):
        return [f"{where}: missing"]
    for key in ("allOf", "not"):
        if key in theirs or key in mine:
            return [f"{where}: {key} is not compared here; extend this test"]
    their_options, my_options = _alternatives(official, theirs), _alternatives(ours, mine)
    if len(their_options) > 1 or len(my_options) > 1:
        unmatched: list[str] = []
        for n, option in enumerate(their_options):
            tries = [
                compare_schemas(official, ours, option, mine_, f"{where}|{n}", request=request)
                for mine_ in my_options
            ]
            if all(tries):
                fewest: list[str] = min(tries, key=len)
                unmatched += fewest
        return unmatched

    problems = []
    if "type" in theirs and mine.get("type") != theirs["type"]:
        problems.append(f"{where}: type {mine.get('type')!r}, npm says {theirs['type']!r}")
    if "format" in theirs and mine.get("format") != theirs["format"]:
        problems.append(f"{where}: format {mine.get('format')!r}, npm says {theirs['format']!r}")
    problems += _compare_enums(theirs, mine, where, request=request)
    their_null, my_null = bool(theirs.get("nullable")), bool(mine.get("nullable"))
    if request and their_null and not my_null:
        problems.append(f"{where}: not nullable, npm allows null")
    if not request and my_null and not their_null:
        problems.append(f"{where}: nullable, npm never answers null")

    their_required, my_required = set(theirs.get("required", [])), set(mine.get("required", []))
    if their_required - my_required:
        problems.append(f"{where}: does not require {sorted(their_required - my_required)}")
    if request and my_required - their_required:
        problems.append(f"{where}: requires {sorted(my_required - their_required)}, npm does not")
    my_properties = mine.get("properties", {})
    for name, schema in theirs.get("properties", {}).items():
        if name not in my_properties:
            problems.append(f"{where}.{name}: missing")
        else:
            problems += compare_schemas(
                official, ours, schema, my_properties[name], f"{where}.{name}", request=request
            )
    their_extra, my_extra = theirs.get("additionalProperties"), mine.get("additionalProperties")
    if isinstance(their_extra, dict):
        problems += compare_schemas(
            official, ours, their_extra, my_extra, f"{where}.*", request=request
        )
    if request and my_extra is False and their_extra is not False:
        problems.append(f"{where}: closed, npm allows more properties")
    if "items" in theirs:
        problems += compare_schemas(
            official, ours, theirs["items"], mine.get("items"), f"{where}[]", request=request
        )
    return problems


def _alternatives(doc: Doc, schema: Node) -> list[Any]:
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return [doc.resolve(option) for option in schema[key]]
    return [schema]


def _compare_enums(theirs: Node, mine: Node, where: str, *, request: bool) -> list[str]:
    their_enum, my_enum = theirs.get("enum"), mine.get("enum")
    if request:
        if their_enum is not None and my_enum is not None and set(their_enum) - set(my_enum):
            return [f"{where}: refuses {sorted(set(their_enum) - set(my_enum))}"]
    elif their_enum is not None:
        if my_enum is None:
            return [f"{where}: no enum, npm says {their_enum}"]
        if set(my_enum) - set(their_enum):
            return [f"{where}: answers {sorted(set(my_enum) - set(their_enum))}, beyond npm's"]
    return []


def differences(official_doc: Node, our_doc: Node) -> list[str]:
    """Everything npm's description has that ours lacks (empty when ours covers it)."""
    official, ours = Doc(official_doc), Doc(our_doc)
    our_operations = {(path, method): op for path, method, op in ours.operations()}
    problems = []
    for path, method, theirs in official.operations():
        where = f"{method.upper()} {path}"
        mine = our_operations.get((path, method))
        if mine is None:
            problems.append(f"{where}: missing")
            continue
        problems += _compare_parameters(official, ours, path, theirs, mine, where)
        problems += _compare_request_body(official, ours, theirs, mine, where)
        problems += _compare_responses(official, ours, theirs, mine, where)
    return problems


def _compare_parameters(
    official: Doc, ours: Doc, path: str, theirs: Node, mine: Node, where: str
) -> list[str]:
    problems = []
    their_params, my_params = official.parameters(path, theirs), ours.parameters(path, mine)
    for key, param in their_params.items():
        at = f"{where} {key}"
        if key not in my_params:
            problems.append(f"{at}: missing")
            continue
        looser = (where, key) in LOOSER_REQUESTS
        their_required, my_required = (
            bool(param.get("required")),
            bool(my_params[key].get("required")),
        )
        if their_required != my_required and not (looser and their_required):
            problems.append(f"{at}: required {my_required}, npm says {their_required}")
        if looser and their_required == my_required:
            problems.append(f"{at}: listed in LOOSER_REQUESTS but no longer looser")
        problems += compare_schemas(
            official, ours, param.get("schema"), my_params[key].get("schema"), at, request=True
        )
    for key, param in my_params.items():
        if param.get("required") and key not in their_params:
            problems.append(f"{where} {key}: required here, unknown to npm")
    return problems


def _compare_request_body(
    official: Doc, ours: Doc, theirs: Node, mine: Node, where: str
) -> list[str]:
    if "requestBody" not in theirs:
        return [f"{where}: a request body npm does not describe"] if "requestBody" in mine else []
    their_body = official.resolve(theirs["requestBody"])
    my_body = ours.resolve(mine.get("requestBody", {}))
    if not my_body:
        return [f"{where} body: missing"]
    problems = []
    if bool(their_body.get("required")) != bool(my_body.get("required")):
        problems.append(f"{where} body: required {my_body.get('required')!r}, npm says otherwise")
    problems += _compare_content(official, ours, their_body, my_body, f"{where} body", request=True)
    return problems


def _compare_responses(official: Doc, ours: Doc, theirs: Node, mine: Node, where: str) -> list[str]:
    problems = []
    my_responses = mine.get("responses", {})
    for status, raw in theirs.get("responses", {}).items():
        at = f"{where} -> {status}"
        if str(status) not in my_responses:
            problems.append(f"{at}: missing")
            continue
        their_response, my_response = official.resolve(raw), ours.resolve(my_responses[status])
        my_headers = {name.lower(): h for name, h in my_response.get("headers", {}).items()}
        for name, header in their_response.get("headers", {}).items():
            mine_ = ours.resolve(my_headers.get(name.lower(), {}))
            if not mine_:
                problems.append(f"{at} header {name}: missing")
                continue
            their_schema, my_schema = official.resolve(header).get("schema"), mine_.get("schema")
            problems += compare_schemas(
                official, ours, their_schema, my_schema, f"{at} header {name}", request=False
            )
        problems += _compare_content(official, ours, their_response, my_response, at, request=False)
    return problems


def _compare_content(
    official: Doc, ours: Doc, theirs: Node, mine: Node, where: str, *, request: bool
) -> list[str]:
    problems = []
    my_content = mine.get("content", {})
    for media_type, their_media in theirs.get("content", {}).items():
        if media_type not in my_content:
            problems.append(f"{where} {media_type}: missing")
            continue
        problems += compare_schemas(
            official,
            ours,
            their_media.get("schema"),
            my_content[media_type].get("schema"),
            f"{where} {media_type}",
            request=request,
        )
    if not request:
        for media_type in my_content.keys() - theirs.get("content", {}).keys():
            problems.append(f"{where} {media_type}: a content type npm does not describe")
    return problems


def official_examples(doc: Node) -> Iterator[tuple[str, str, str, str, Any]]:
    """Every response example in `doc`: path, method, status, media type, value."""
    official = Doc(doc)
    for path, method, operation in official.operations():
        for status, raw in operation.get("responses", {}).items():
            for media_type, media in official.resolve(raw).get("content", {}).items():
                if media_type != "application/json":
                    continue
                for example in media.get("examples", {}).values():
                    yield path, method, str(status), media_type, official.resolve(example)["value"]


# -- the comparison --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def official() -> Node:
    if not OFFICIAL.is_file():
        pytest.skip("../shared/npm-api/stage.yaml is not beside the repository (it is in CI)")
    doc: Node = yaml.safe_load(OFFICIAL.read_text())
    return doc


def test_ours_covers_every_path_method_status_and_field_of_npms(official: Node):
    problems = differences(official, stage_description())

    assert not problems, "devregistry/openapi.yaml lacks what npm describes:\n" + "\n".join(
        problems
    )


def test_npms_response_examples_are_answers_ours_allows(official: Node):
    ours = Doc(stage_description())
    problems, checked = [], 0
    for path, method, status, media_type, value in official_examples(official):
        where = f"{method.upper()} {path} -> {status}"
        responses = ours.doc["paths"].get(path, {}).get(method, {}).get("responses", {})
        content = ours.resolve(responses.get(status, {})).get("content", {})
        if media_type not in content:
            problems.append(f"{where}: no {media_type} answer described")
            continue
        schema = ours.inline(content[media_type]["schema"])
        checked += 1
        validator = OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER)
        for error in validator.iter_errors(value):
            problems.append(f"{where}: {error.message}")

    assert checked > 10
    assert not problems, "\n".join(problems)


def _without(*keys: str) -> Callable[[Node], None]:
    def change(doc: Node) -> None:
        node = doc
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return change


def _set(value: Any, *keys: str) -> Callable[[Node], None]:
    def change(doc: Node) -> None:
        node = doc
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return change


def _first_param(doc: Node, path: str, method: str, name: str) -> Node:
    for param in doc["paths"][path][method]["parameters"]:
        param = Doc(doc).resolve(param)
        if param["name"] == name:
            return param  # type: ignore[no-any-return]
    raise KeyError(name)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            _without("paths", "/-/stage/{stage-id}/tarball"),
            "GET /-/stage/{stage-id}/tarball: missing",
        ),
        (_without("paths", "/-/stage/{stage-id}", "delete"), "DELETE /-/stage/{stage-id}: missing"),
        (
            _without("paths", "/-/stage/{stage-id}/approve", "post", "responses", "409"),
            "POST /-/stage/{stage-id}/approve -> 409: missing",
        ),
        (
            _without("components", "schemas", "Stage", "properties", "shasum"),
            "GET /-/stage -> 200 application/json.items[].shasum: missing",
        ),
        (
            _set("string", "components", "schemas", "StagePage", "properties", "total", "type"),
            "GET /-/stage -> 200 application/json.total: type 'string', npm says 'integer'",
        ),
        (
            _set([], "components", "schemas", "WebAuthChallenge", "required"),
            "does not require ['authUrl', 'doneUrl']",
        ),
        (
            _set(["name", "versions"], "components", "schemas", "PublishBody", "required"),
            "POST /-/stage/package/{package-name} body application/json: does not require",
        ),
        (
            _set("integer", "components", "parameters", "StageId", "schema", "type"),
            "GET /-/stage/{stage-id} path stage-id: type 'integer', npm says 'string'",
        ),
        (
            _without("components", "parameters", "StageId", "schema", "format"),
            "path stage-id: format None, npm says 'uuid'",
        ),
        (
            _set(
                ["public", "private", "restricted"],
                "components",
                "schemas",
                "Stage",
                "properties",
                "access",
                "enum",
            ),
            "access: answers ['restricted'], beyond npm's",
        ),
        (
            _without("components", "responses", "SecondFactorRequired", "headers", "npm-notice"),
            "-> 401 header npm-notice: missing",
        ),
        (
            lambda doc: _first_param(doc, "/-/stage", "get", "perPage").update(
                schema={"type": "string"}
            ),
            "GET /-/stage query perPage: type 'string', npm says 'integer'",
        ),
        (
            lambda doc: _first_param(doc, "/-/stage", "get", "package").update(required=True),
            "GET /-/stage query package: required True, npm says False",
        ),
        (
            _set(True, "components", "parameters", "Otp", "required"),
            "header npm-otp: listed in LOOSER_REQUESTS but no longer looser",
        ),
    ],
)
def test_the_comparison_catches_what_ours_would_lack(
    official: Node, change: Callable[[Node], None], expected: str
):
    assert differences(official, stage_description()) == []
    changed = stage_description()
    change(changed)

    found = differences(official, changed)

    assert any(expected in problem for problem in found), found


# -- ours on its own (no need for npm's) -----------------------------------------------------


def test_ours_is_a_valid_openapi_3_0_document():
    doc = stage_description()

    validate_openapi(doc)
    assert doc["openapi"].startswith("3.0.")
    assert {"openapi", "info", "paths", "components"} <= doc.keys()


def test_every_object_in_a_response_is_closed_and_fully_required():
    ours = Doc(stage_description())
    problems = []

    def check(node: Any, where: str) -> None:
        node = ours.resolve(node)
        if isinstance(node, list):
            for n, value in enumerate(node):
                check(value, f"{where}[{n}]")
        elif isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                if node.get("additionalProperties") is not False:
                    problems.append(f"{where}: not closed")
                if set(node.get("required", [])) != set(node["properties"]):
                    problems.append(f"{where}: not every property is required")
            for key, value in node.items():
                check(value, f"{where}.{key}")

    for path, method, operation in ours.operations():
        check(operation.get("responses", {}), f"{method.upper()} {path}")

    assert not problems, "\n".join(problems)


def test_ours_refers_to_nothing_outside_itself():
    refs = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            refs.extend([node["$ref"]] if "$ref" in node else [])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(stage_description())

    assert refs
    assert [ref for ref in refs if not ref.startswith("#/")] == []
