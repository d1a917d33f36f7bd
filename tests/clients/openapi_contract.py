"""Checks live /v1 answers against openapi/cloudgate.yaml (STYLE.md §4, "The
contract checks itself"), as firecracker's swagger_validator.py does.

Makes a representative set of real calls (health, users, hosts, vnets,
images, VMs, with their 400/401/403/404/409 errors) and checks that each
answer's status is one the operation documents and that its body matches
the documented schema (JSON Schema 2020-12, the dialect of OpenAPI 3.1).

Environment: CLOUDGATE_URL (the server's base URL), CLOUDGATE_ADMIN_USER
and CLOUDGATE_ADMIN_PASSWORD (oneadmin's credentials), CLOUDGATE_SPEC (the
YAML) and CLOUDGATE_PREFIX (makes the names of what it creates unique).
Exits non-zero, listing every mismatch, if any answer breaks the contract.
"""

import base64
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

import jsonschema
import referencing
import referencing.jsonschema
import yaml

URL = os.environ["CLOUDGATE_URL"].rstrip("/")
ADMIN = (os.environ["CLOUDGATE_ADMIN_USER"], os.environ["CLOUDGATE_ADMIN_PASSWORD"])
PREFIX = os.environ.get("CLOUDGATE_PREFIX", "contract")
SPEC_URI = "urn:cloudgate:openapi"

with open(os.environ["CLOUDGATE_SPEC"], encoding="utf-8") as f:
    SPEC = yaml.safe_load(f)

# The whole document is one resource, so that "#/components/..." resolves.
REGISTRY = referencing.Registry().with_resource(
    SPEC_URI,
    referencing.jsonschema.DRAFT202012.create_resource(SPEC),
)

failures = []
checked = []


def deref(node):
    """Follows a local $ref (responses, parameters) to its target."""
    while isinstance(node, dict) and "$ref" in node:
        target = SPEC
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def operation(method, path):
    """The spec's operation for a concrete path, and its template."""
    for template, item in SPEC["paths"].items():
        if not template.startswith("/v1/"):
            continue
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    return None, None


def absolute(schema):
    """`schema` with its local $refs made to point into the spec."""
    if isinstance(schema, dict):
        return {
            k: SPEC_URI + v if k == "$ref" and v.startswith("#") else absolute(v)
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [absolute(v) for v in schema]
    return schema


def schema_errors(schema, instance, pointer):
    """The messages of every way `instance` breaks `schema` (or the spec's
    schema at `pointer`)."""
    wrapper = {"$ref": SPEC_URI + pointer} if schema is None else absolute(schema)
    validator = jsonschema.Draft202012Validator(wrapper, registry=REGISTRY)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def call(method, path, auth=ADMIN, body=None, raw=None, content_type=None, expect=None):
    """Sends a request, checks the answer against the spec, returns (status, json)."""
    headers = {}
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif raw is not None:
        data = raw
        headers["Content-Type"] = content_type or "application/octet-stream"
    request = urllib.request.Request(URL + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, text, resp_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as e:
        status, text, resp_headers = e.code, e.read(), e.headers
    what = f"{method} {path}"
    checked.append(f"{what} -> {status}")
    parsed = None
    if text:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    if expect is not None and status != expect:
        failures.append(f"{what}: expected {expect}, got {status}: {text[:300]!r}")
    bare = urllib.parse.urlsplit(path).path
    template, op = operation(method, bare)
    if op is None:
        failures.append(f"{what}: no such operation in the spec")
        return status, parsed
    responses = op.get("responses", {})
    key = str(status) if str(status) in responses else ("default" if "default" in responses else None)
    if key is None:
        failures.append(
            f"{what} ({op.get('operationId')}): status {status} not documented "
            f"(documented: {', '.join(responses)}); body {text[:300]!r}"
        )
        return status, parsed
    documented = deref(responses[key])
    # x-request-id on every answer (info.description, components/headers).
    request_id = resp_headers.get("x-request-id")
    if request_id is None:
        failures.append(f"{what}: no x-request-id header")
    else:
        for message in schema_errors(None, request_id, "#/components/headers/RequestId/schema"):
            failures.append(f"{what}: x-request-id {request_id!r}: {message}")
    content = documented.get("content")
    if not content:
        if text:
            failures.append(f"{what} -> {status}: body {text[:200]!r} where the spec documents none")
        return status, parsed
    media = resp_headers.get("Content-Type", "").split(";")[0].strip()
    if media not in content:
        failures.append(f"{what} -> {status}: Content-Type {media!r} not in {list(content)}")
        return status, parsed
    if parsed is None:
        failures.append(f"{what} -> {status}: body is not JSON: {text[:200]!r}")
        return status, parsed
    schema = content[media].get("schema", {})
    for message in schema_errors(schema, parsed, None):
        failures.append(f"{what} -> {status} ({op.get('operationId')}): {message}")
    return status, parsed


def q(name):
    return urllib.parse.quote(name, safe="")


def check_spec():
    """The spec's own schemas must be valid JSON Schema 2020-12."""
    assert SPEC["openapi"].startswith("3.1"), SPEC["openapi"]
    for name, schema in SPEC["components"]["schemas"].items():
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            failures.append(f"components/schemas/{name}: not a valid schema: {e.message}")


def main():
    check_spec()
    # Health, with and without credentials.
    call("GET", "/v1/health", auth=None, expect=200)

    # Users.
    user, password = f"{PREFIX}u", "pw-contract"
    other = f"{PREFIX}o"
    call("GET", "/v1/users", expect=200)
    call("GET", "/v1/users", auth=None, expect=401)
    call("GET", "/v1/users", auth=(ADMIN[0], "wrong"), expect=401)
    _, created = call("POST", "/v1/users", body={"name": user, "password": password}, expect=201)
    call("POST", "/v1/users", body={"name": other, "password": password}, expect=201)
    call("POST", "/v1/users", body={"name": user, "password": password}, expect=409)
    call("POST", "/v1/users", body={"name": user}, expect=400)
    call("POST", "/v1/users", body={"name": "x", "password": "y", "bogus": 1}, expect=400)
    call("POST", "/v1/users", auth=(user, password), body={"name": f"{PREFIX}n", "password": "p"}, expect=403)
    me = (user, password)
    call("GET", "/v1/users", auth=me, expect=403)
    call("GET", f"/v1/users/{q(user)}", expect=200)
    if created:
        call("GET", f"/v1/users/{created['id']}", auth=me, expect=200)
    call("GET", f"/v1/users/{q(other)}", auth=me, expect=403)
    call("GET", f"/v1/users/{q(PREFIX + 'nobody')}", expect=404)
    call("PUT", f"/v1/users/{q(user)}/password", body={"password": "pw2"}, expect=200)
    me = (user, "pw2")
    call("PUT", f"/v1/users/{q(user)}/password", auth=me, body={"password": password}, expect=200)
    me = (user, password)
    call("PUT", f"/v1/users/{q(user)}/password", body={}, expect=400)
    call("PUT", f"/v1/users/{q(other)}/password", auth=me, body={"password": "x"}, expect=403)
    call("PUT", f"/v1/users/{q(PREFIX + 'nobody')}/password", body={"password": "x"}, expect=404)
    call("POST", f"/v1/users/{q(other)}/disable", expect=200)
    call("GET", "/v1/vnets", auth=(other, password), expect=401)
    call("POST", f"/v1/users/{q(other)}/enable", expect=200)
    call("POST", "/v1/users/oneadmin/disable", expect=409)
    call("POST", f"/v1/users/{q(other)}/disable", auth=me, expect=403)
    call("POST", f"/v1/users/{q(other)}/enable", auth=me, expect=403)
    call("POST", f"/v1/users/{q(PREFIX + 'nobody')}/enable", expect=404)
    call("POST", f"/v1/users/{q(PREFIX + 'nobody')}/disable", expect=404)
    call("DELETE", "/v1/users/0", expect=409)
    call("DELETE", f"/v1/users/{q(other)}", auth=me, expect=403)
    call("DELETE", f"/v1/users/{q(PREFIX + 'nobody')}", expect=404)

    # Hosts: a dummy host, so that list and show have something to show.
    host = f"{PREFIX}h"
    host_body = {"name": host, "im_mad": "dummy", "vmm_mad": "dummy", "tm_mad": "dummy"}
    call("POST", "/v1/hosts", body=host_body, expect=201)
    call("POST", "/v1/hosts", body=host_body, expect=409)
    call("GET", "/v1/hosts", expect=200)
    call("GET", "/v1/hosts", auth=me, expect=403)
    call("GET", f"/v1/hosts/{q(host)}", expect=200)
    call("GET", f"/v1/hosts/{q(host)}", auth=me, expect=403)
    call("GET", f"/v1/hosts/{q(PREFIX + 'nohost')}", expect=404)

    # Virtual networks, as the user.
    vnet = f"{PREFIX}net"
    template = f'NAME = "{vnet}"\nBRIDGE = br0\nNETWORK_ADDRESS = 10.9.0.0\nNETWORK_SIZE = C\n'
    _, net = call("POST", "/v1/vnets", auth=me, body={"template": template}, expect=201)
    call("POST", "/v1/vnets", auth=me, body={"template": template}, expect=409)
    call("POST", "/v1/vnets", auth=me, body={"template": 'NAME = "bad"\nBRIDGE = br0\nNETWORK_ADDRESS = nope\n'}, expect=400)
    call("GET", "/v1/vnets", auth=me, expect=200)
    call("GET", "/v1/vnets", expect=200)
    call("GET", f"/v1/vnets/{q(vnet)}", auth=me, expect=200)
    if net:
        call("GET", f"/v1/vnets/{net['id']}", expect=200)
        call("GET", f"/v1/vnets/{net['id']}", auth=(other, password), expect=403)
    call("GET", f"/v1/vnets/{q(PREFIX + 'nonet')}", auth=me, expect=404)

    # Images: a small upload.
    image = f"{PREFIX}img"
    upload = f"/v1/images?name={q(image)}&type=DATABLOCK"
    _, img = call("POST", upload, auth=me, raw=b"\0" * 4096, expect=201)
    call("POST", upload, auth=me, raw=b"\0" * 16, expect=409)
    call("POST", "/v1/images?type=DATABLOCK", auth=me, raw=b"\0" * 16, expect=400)
    call("POST", "/v1/images", auth=me, body={"path": "/etc/hostname", "name": f"{PREFIX}reg"}, expect=403)
    call("GET", "/v1/images", auth=me, expect=200)
    call("GET", "/v1/images", expect=200)
    call("GET", f"/v1/images/{q(image)}", auth=me, expect=200)
    if img:
        call("GET", f"/v1/images/{img['id']}", auth=(other, password), expect=403)
    call("GET", f"/v1/images/{q(PREFIX + 'noimg')}", auth=me, expect=404)

    # VMs, pinned to no host so that they stay PENDING.
    vm_template = (
        f'NAME = "{PREFIX}vm"\nCPU = 0.5\nMEMORY = 64\n'
        'REQUIREMENTS = "NAME = \\"nowhere\\""\n'
        f'NIC = [ NETWORK = "{vnet}" ]\n'
        "DISK = [ TYPE = fs, SIZE = 8, FORMAT = ext3 ]\n"
        "DISK = [ TYPE = fs, SIZE = 8, FORMAT = ext3 ]\n"
    )
    _, vm = call("POST", "/v1/vms", auth=me, body={"template": vm_template}, expect=201)
    call("POST", "/v1/vms", auth=me, body={"template": "CPU = 0.5\nMEMORY = nope\n"}, expect=400)
    call("POST", "/v1/vms", auth=me, body={"template": "CPU = 0.5\nMEMORY = 64\nNIC = [ NETWORK = \"" + PREFIX + "nonet\" ]\n"}, expect=None)
    call("GET", "/v1/vms", auth=me, expect=200)
    call("GET", "/v1/vms?filter=mine", auth=me, expect=200)
    call("GET", f"/v1/vms?filter={q(PREFIX + 'nobody')}", expect=404)
    call("GET", "/v1/vms", expect=200)
    if vm:
        v = vm["id"]
        call("GET", f"/v1/vms/{v}", auth=me, expect=200)
        call("GET", f"/v1/vms/{v}", auth=(other, password), expect=403)
        call("GET", f"/v1/vms/{v}/history", auth=me, expect=200)
        call("POST", f"/v1/vms/{v}/actions/hold", auth=me, expect=200)
        call("POST", f"/v1/vms/{v}/actions/suspend", auth=me, expect=400)
        call("POST", f"/v1/vms/{v}/actions/release", auth=me, expect=200)
        call("POST", f"/v1/vms/{v}/actions/deploy", auth=me, body={"host": host}, expect=403)
        call("POST", f"/v1/vms/{v}/actions/deploy", body={"host": PREFIX + "nohost"}, expect=404)
        call("POST", f"/v1/vms/{v}/actions/frobnicate", auth=me, expect=None)
        call("POST", f"/v1/vms/{v}/actions/hold", auth=me, body={"bogus": 1}, expect=400)
        saveas = f"/v1/vms/{v}/disks/0/saveas"
        _, saved = call("POST", saveas, auth=me, body={"name": f"{PREFIX}saved"}, expect=201)
        call("POST", saveas, auth=me, body={"name": f"{PREFIX}again"}, expect=400)
        call("POST", saveas, auth=(other, password), body={"name": f"{PREFIX}x"}, expect=403)
        call("POST", saveas, auth=me, body={}, expect=400)
        call("POST", f"/v1/vms/{v}/disks/9/saveas", auth=me, body={"name": f"{PREFIX}x"}, expect=400)
        call("POST", f"/v1/vms/{v}/disks/1/saveas", auth=me, body={"name": image}, expect=409)
        if net:
            call("DELETE", f"/v1/vnets/{net['id']}", auth=me, expect=409)
        call("DELETE", f"/v1/vms/{v}", auth=(other, password), expect=403)
        call("DELETE", f"/v1/vms/{v}", auth=me, expect=200)
        call("GET", f"/v1/vms/{v}", auth=me, expect=200)
        call("GET", f"/v1/vms/{v}/history", auth=me, expect=200)
    call("GET", "/v1/vms/999999999", auth=me, expect=404)
    call("GET", "/v1/vms/999999999/history", auth=me, expect=404)
    call("DELETE", "/v1/vms/999999999", auth=me, expect=404)
    call("POST", "/v1/vms/999999999/disks/0/saveas", auth=me, body={"name": "x"}, expect=404)

    # Clean up, checking the deletes.
    if img:
        call("DELETE", f"/v1/images/{img['id']}", auth=(other, password), expect=403)
        call("DELETE", f"/v1/images/{img['id']}", auth=me, expect=204)
    if vm and saved:
        # Its VM was deleted before saving it: ERROR, which may go.
        call("DELETE", f"/v1/images/{saved['id']}", auth=me, expect=204)
    call("DELETE", f"/v1/images/{q(PREFIX + 'noimg')}", auth=me, expect=404)
    if net:
        call("DELETE", f"/v1/vnets/{net['id']}", auth=(other, password), expect=403)
        call("DELETE", f"/v1/vnets/{net['id']}", auth=me, expect=204)
    call("DELETE", f"/v1/vnets/{q(PREFIX + 'nonet')}", auth=me, expect=404)
    call("DELETE", f"/v1/hosts/{q(host)}", expect=None)
    call("DELETE", f"/v1/users/{q(other)}", expect=204)
    call("DELETE", f"/v1/users/{q(other)}", expect=404)
    # The user still owns its VM (DONE VMs are kept), so it stays.
    call("DELETE", f"/v1/users/{q(user)}", expect=409)

    if os.environ.get("CLOUDGATE_VERBOSE"):
        print("\n".join(checked))
    print(f"{len(checked)} answers checked against the spec")
    if failures:
        print(f"{len(failures)} contract failures:")
        for failure in failures:
            print("  " + failure)
        sys.exit(1)


if __name__ == "__main__":
    main()
