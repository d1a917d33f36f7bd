"""libcloud's EC2 driver, unmodified, against cloudgate's EC2 front
(spec/EC2.md section 9.3): list_images, list_nodes, list_locations,
create_node in a listed location, reboot_node, destroy_node, with signature
version 2 (GET, HmacSHA256, host with port) or 4 (GET, every parameter in
the query string, libcloud's own signed headers). Run by
tests/integration/ec2_clients.rs with the virtualenv that .ci/setup
creates.

Usage: ec2_libcloud.py SIGNATURE_VERSION   (2 or 4)
Environment: CLOUDGATE_URL (http://host:port), EC2_USER, EC2_SECRET (the
SHA1 hex of the password), EC2_IMAGE (an ami- id the user registered).

Exits 0 when every step works; prints one line per step.
"""

import os
import sys
import time
from urllib.parse import urlparse

from libcloud.common.types import InvalidCredsError
from libcloud.compute.drivers.ec2 import EC2NodeDriver
from libcloud.compute.types import NodeState

DEADLINE = 60


def step(what):
    print("ok", what, flush=True)


def driver(version, secret=None):
    url = urlparse(os.environ["CLOUDGATE_URL"])
    return EC2NodeDriver(
        os.environ["EC2_USER"],
        secret or os.environ["EC2_SECRET"],
        secure=False,
        host=url.hostname,
        port=url.port,
        signature_version=version,
    )


def wait_for(d, node_id, wanted):
    deadline = time.time() + DEADLINE
    last = None
    while time.time() < deadline:
        nodes = {n.id: n for n in d.list_nodes()}
        last = nodes.get(node_id)
        if last is not None and last.state == wanted:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{node_id} never reached {wanted}; last seen {last}")


def main():
    version = sys.argv[1]
    image_id = os.environ["EC2_IMAGE"]
    d = driver(version)

    images = {i.id: i for i in d.list_images(ex_owner="self")}
    assert image_id in images, images
    image = images[image_id]
    step("list_images")

    assert d.list_nodes() == [], d.list_nodes()
    # libcloud asks for the zones of its own region (region-name=us-east-1)
    # and create_node refuses a zone of another region: cloudgate answers
    # its one zone in the region the client names.
    locations = d.list_locations()
    assert [l.availability_zone.name for l in locations] == ["default"], locations
    zone = locations[0].availability_zone
    assert zone.region_name == d.region_name == "us-east-1", zone
    assert zone.zone_state == "available", zone
    step("list_nodes (empty), list_locations")

    size = next(s for s in d.list_sizes() if s.id == "t2.micro")
    node = d.create_node(name="lc-node", image=image, size=size, location=locations[0])
    assert node.state == NodeState.PENDING, node
    assert node.extra["availability"] == "default", node.extra
    node = wait_for(d, node.id, NodeState.RUNNING)
    assert node.name == "lc-node" and node.extra["tags"].get("Name") == "lc-node", node.extra
    assert node.extra["instance_type"] == "t2.micro", node.extra
    assert node.extra["availability"] == "default", node.extra
    step(f"create_node {node.id} in location {locations[0].name}, running")

    assert d.reboot_node(node)
    step("reboot_node")

    try:
        d.create_node(name="x", image=type(image)("ami-99999999", None, d), size=size)
        raise AssertionError("an unknown image launched")
    except AssertionError:
        raise
    except Exception as e:  # libcloud raises its BaseHTTPError subclasses
        assert "InvalidAMIID.NotFound" in str(e), e
    try:
        driver(version, secret="0" * 40).list_nodes()
        raise AssertionError("a wrong secret was accepted")
    except InvalidCredsError:
        pass
    step("unknown image, wrong secret")

    assert d.destroy_node(node)
    wait_for(d, node.id, NodeState.TERMINATED)
    step("destroy_node, terminated")


if __name__ == "__main__":
    main()
