"""libcloud's OpenNebula driver, unmodified, against cloudgate's OCCI front
(spec/OCCI.md section 10). Run by tests/integration/occi.rs with the
virtualenv that .ci/setup creates (.venv, apache-libcloud from PyPI).

Usage: occi_libcloud.py API_VERSION   (1.4, 2.0 or 3.8)
Environment: CLOUDGATE_URL (http://host:port), OCCI_USER, OCCI_PASSWORD,
OCCI_IMAGE and OCCI_NETWORK (names of an image and a network the user may
use; libcloud cannot create them in these API versions), OCCI_SMALL (the
server's "CPU MEMORY" of instance type small).

Exits 0 when every flow works; prints one line per step. With 3.8, the
SHUTDOWN node's disk is first saved as a new image (ex_node_set_save_name).
"""

import os
import sys
import time
from urllib.parse import urlparse

from libcloud.compute.drivers.opennebula import ACTION, OpenNebulaNodeDriver
from libcloud.compute.types import NodeState

DEADLINE = 60


def step(what):
    print("ok", what, flush=True)


def wait_for(driver, node_id, wanted):
    """Polls list_nodes until the node is in `wanted` (a NodeState), or is
    gone when `wanted` is None."""
    deadline = time.time() + DEADLINE
    last = None
    while time.time() < deadline:
        nodes = {n.id: n for n in driver.list_nodes()}
        node = nodes.get(node_id)
        if wanted is None and node is None:
            return None
        if node is not None and node.state == wanted:
            return node
        last = node
        time.sleep(0.2)
    raise AssertionError(f"node {node_id} never reached {wanted}; last {last!r}")


def wait_running(driver, node_id):
    """libcloud maps every ACTIVE sub-state (PROLOG, BOOT...) to RUNNING;
    actions need the VM really running, which cloudgate's extra LCM_STATE
    element tells (read through libcloud's own connection)."""
    deadline = time.time() + DEADLINE
    while time.time() < deadline:
        compute = driver.connection.request(f"/compute/{node_id}").object
        if compute.findtext("LCM_STATE") == "RUNNING":
            return
        time.sleep(0.1)
    raise AssertionError(f"node {node_id} never reached LCM_STATE RUNNING")


def main():
    api = sys.argv[1]
    url = urlparse(os.environ["CLOUDGATE_URL"])
    driver = OpenNebulaNodeDriver(
        os.environ["OCCI_USER"],
        os.environ["OCCI_PASSWORD"],
        secure=False,
        host=url.hostname,
        port=url.port,
        api_version=api,
    )

    sizes = driver.list_sizes()
    names = [s.name for s in sizes]
    assert {"small", "medium", "large"} <= set(names), names
    small = next(s for s in sizes if s.name == "small")
    if api == "3.8":
        # Read from GET /instance_type and /instance_type/<name>: the
        # server's configured figures (OCCI_SMALL = "cpu memory").
        cpu, memory = os.environ["OCCI_SMALL"].split()
        assert small.ram == int(memory) and small.cpu == float(cpu), (small.ram, small.cpu)
    step(f"list_sizes {names}")

    locations = driver.list_locations()
    assert len(locations) == 1, locations
    step("list_locations")

    images = driver.list_images()
    image = next(i for i in images if i.name == os.environ["OCCI_IMAGE"])
    assert int(image.extra["size"]) >= 1, image.extra
    step(f"list_images ({len(images)}, image {image.id})")

    networks = driver.ex_list_networks()
    network = next(n for n in networks if n.name == os.environ["OCCI_NETWORK"])
    assert network.address, network
    step(f"ex_list_networks ({len(networks)}, network {network.id} {network.address})")

    before = {n.id for n in driver.list_nodes()}
    step(f"list_nodes ({len(before)})")

    if api == "1.4":
        node = driver.create_node(name="lc", size=small, image=image, networks=[network])
    else:
        node = driver.create_node(
            name="lc", size=small, image=image, networks=[network], context={"hostname": "lc"}
        )
    assert node.id and node.id not in before, node
    assert node.state in (NodeState.PENDING, NodeState.RUNNING), node.state
    # libcloud asked for the network's own address: any free one was leased.
    ips = [n.address for n in node.public_ips]
    assert len(ips) == 1 and ips[0] and ips[0] != network.address, ips
    if api == "1.4":
        assert node.image.id == image.id, node.image
    else:
        assert node.image.id == image.id, node.image
        assert node.size is not None and node.size.name == "small", node.size
        assert node.extra["context"].get("hostname") == "lc", node.extra
    step(f"create_node {node.id} {ips}")

    node = wait_for(driver, node.id, NodeState.RUNNING)
    wait_running(driver, node.id)
    step("running")

    assert driver.ex_node_action(node, ACTION.SUSPEND)
    node = wait_for(driver, node.id, NodeState.PENDING)
    step("ex_node_action SUSPENDED")
    assert driver.ex_node_action(node, ACTION.RESUME)
    node = wait_for(driver, node.id, NodeState.RUNNING)
    wait_running(driver, node.id)
    step("ex_node_action RESUME")
    if api == "3.8":
        assert driver.reboot_node(node)
    else:
        assert driver.ex_node_action(node, ACTION.REBOOT)
    step("reboot")

    assert driver.destroy_node(node) is True
    wait_for(driver, node.id, None)
    step("destroy_node")

    # A second node ended with SHUTDOWN, a third with CANCEL.
    for action in (ACTION.SHUTDOWN, ACTION.CANCEL):
        other = driver.create_node(name="lc2", size=small, image=image)
        wait_for(driver, other.id, NodeState.RUNNING)
        wait_running(driver, other.id)
        saved = f"lc-saved-{other.id}"
        if api == "3.8" and action == ACTION.SHUTDOWN:
            # 3.0+: its disk is saved as a new image at shutdown.
            assert driver.ex_node_set_save_name(other, saved)
            step("ex_node_set_save_name")
        assert driver.ex_node_action(other, action)
        wait_for(driver, other.id, None)
        step(f"ex_node_action {action}")
        if api == "3.8" and action == ACTION.SHUTDOWN:
            assert saved in [i.name for i in driver.list_images()], saved
            step(f"list_images shows {saved}")

    print(f"libcloud OpenNebula api {api}: all flows passed", flush=True)


if __name__ == "__main__":
    main()
