"""Checks the EC2 golden responses (tests/data/ec2) against botocore's own
model of the API (spec/EC2.md §6): each element must be a member of the
shape botocore parses its parent with (by its locationName), each list
item must carry the element name the list expects, and integers, booleans
and timestamps must be readable as such. botocore silently drops what it
does not know, so a misnamed element would reach no client and fail no
client test; this is where it shows.

Usage: python ec2_golden_shapes.py <golden dir>; exits 1 listing every
mismatch. Error documents (Response/Errors) are parsed by botocore's
generic error parser and are not checked here.
"""

import glob
import os
import re
import sys
import xml.etree.ElementTree as ET

import botocore.loaders

# The API version the golden files are rendered for (their namespace).
API_VERSION = "2016-11-15"
# Response metadata every top-level result carries; botocore reads it
# outside the output shape.
METADATA = {"requestId"}
# Elements sent on purpose beside the model's, for older clients.
LEGACY = {
    # spec/EC2.md §6.6: econe 1.4/2.x clients read the terminated
    # instance's state from it; botocore reads currentState.
    ("InstanceStateChange", "shutdownState"),
}


def local(tag):
    return tag.split("}", 1)[-1]


def members_by_wire_name(shape):
    return {m.get("locationName", name): m for name, m in shape["members"].items()}


def check(element, shape_name, path, shapes, problems):
    shape = shapes[shape_name]
    kind = shape["type"]
    if kind == "structure":
        members = members_by_wire_name(shape)
        for child in element:
            name = local(child.tag)
            member = members.get(name)
            if member is None:
                top_level_metadata = path.count("/") == 0 and name in METADATA
                if not top_level_metadata and (shape_name, name) not in LEGACY:
                    problems.append(f"{path}/{name}: no such member of {shape_name}")
                continue
            check(child, member["shape"], f"{path}/{name}", shapes, problems)
    elif kind == "list":
        member = shape["member"]
        wanted = member.get("locationName", "item")
        for child in element:
            name = local(child.tag)
            if name != wanted:
                problems.append(f"{path}/{name}: {shape_name} items are <{wanted}>")
            check(child, member["shape"], f"{path}/{name}", shapes, problems)
    else:
        text = (element.text or "").strip()
        if len(element):
            problems.append(f"{path}: {shape_name} is a {kind}, not a structure")
        elif kind in ("integer", "long") and not re.fullmatch(r"-?\d+", text):
            problems.append(f"{path}: {kind} {text!r}")
        elif kind == "boolean" and text not in ("true", "false"):
            problems.append(f"{path}: boolean {text!r}")
        elif kind == "timestamp" and not re.fullmatch(
                r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", text):
            problems.append(f"{path}: timestamp {text!r}")


def main(directory):
    model = botocore.loaders.Loader().load_service_model("ec2", "service-2", API_VERSION)
    shapes, operations = model["shapes"], model["operations"]
    problems, checked = [], 0
    for path in sorted(glob.glob(os.path.join(directory, "*.xml"))):
        root = ET.parse(path).getroot()
        name, file = local(root.tag), os.path.basename(path)
        if name == "Response":
            continue
        operation = operations.get(name.removesuffix("Response"))
        if not name.endswith("Response") or operation is None:
            problems.append(f"{file}: <{name}> answers no EC2 operation")
            continue
        if "output" in operation:
            check(root, operation["output"]["shape"], file, shapes, problems)
        checked += 1
    for problem in problems:
        print(problem)
    print(f"{checked} responses checked against botocore's EC2 {API_VERSION} model, "
          f"{len(problems)} mismatches")
    if problems or checked == 0:
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1])
