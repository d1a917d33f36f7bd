"""boto3, unmodified, against cloudgate's EC2 front (spec/EC2.md section 9):
every action, the waiters, and the refusals a client can provoke. Run by
tests/integration/ec2_clients.rs with the virtualenv that .ci/setup creates.

Usage: ec2_boto3.py SIGNATURE_VERSION   (v4 or v2)
Environment: CLOUDGATE_URL (http://host:port), EC2_USER, EC2_SECRET (the
SHA1 hex of the password), EC2_IMAGE (an ami- id the user registered).

Exits 0 when every step works; prints one line per step.
"""

import base64
import contextlib
import datetime
import os
import struct
import sys
import time

import boto3
import botocore.auth
from botocore.config import Config
from botocore.exceptions import ClientError


def public_key():
    """An OpenSSH ed25519 public key line, as ssh-keygen writes one (the
    key's 32 bytes are random: only its format matters here)."""

    def string(b):
        return struct.pack(">I", len(b)) + b

    blob = string(b"ssh-ed25519") + string(os.urandom(32))
    return "ssh-ed25519 " + base64.b64encode(blob).decode() + " imported@example"


def step(what):
    print("ok", what, flush=True)


def client(signature, secret=None):
    return boto3.client(
        "ec2",
        endpoint_url=os.environ["CLOUDGATE_URL"],
        region_name="us-east-1",
        aws_access_key_id=os.environ["EC2_USER"],
        aws_secret_access_key=secret or os.environ["EC2_SECRET"],
        config=Config(
            signature_version=signature,
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )


def expect_error(code, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"expected {code}, got {got}: {e}"
        return e
    raise AssertionError(f"expected {code}, the call succeeded")


def states(ec2, ids):
    found = {}
    for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
        for i in r["Instances"]:
            found[i["InstanceId"]] = i["State"]["Name"]
    return [found[i] for i in ids]


@contextlib.contextmanager
def clock_behind(seconds):
    """Signs as if the client's clock were `seconds` late (both signers)."""
    v4_now = botocore.auth.get_current_datetime
    v2_gmtime = botocore.auth.time.gmtime
    botocore.auth.get_current_datetime = lambda: v4_now() - datetime.timedelta(seconds=seconds)
    botocore.auth.time.gmtime = lambda *a: v2_gmtime(time.time() - seconds)
    try:
        yield
    finally:
        botocore.auth.get_current_datetime = v4_now
        botocore.auth.time.gmtime = v2_gmtime


def main():
    signature = sys.argv[1]
    image = os.environ["EC2_IMAGE"]
    ec2 = client(signature)
    waiter = {"Delay": 1, "MaxAttempts": 60}

    regions = ec2.describe_regions()["Regions"]
    assert [r["RegionName"] for r in regions] == ["opennebula"], regions
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    zone = zones[0]["ZoneName"]
    assert zones[0]["State"] == "available", zones
    assert ec2.describe_addresses()["Addresses"] == []
    step("describe_regions, describe_availability_zones, describe_addresses")

    mine = [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]
    assert image in mine, mine
    ec2.get_waiter("image_available").wait(ImageIds=[image], WaiterConfig=waiter)
    step("describe_images, image_available waiter")

    created = ec2.create_key_pair(
        KeyName="boto-key",
        TagSpecifications=[{"ResourceType": "key-pair", "Tags": [{"Key": "Name", "Value": "laptop"}]}],
    )
    assert "PRIVATE KEY" in created["KeyMaterial"], created
    assert created["Tags"] == [{"Key": "Name", "Value": "laptop"}], created
    imported = ec2.import_key_pair(KeyName="boto-imported", PublicKeyMaterial=public_key().encode())
    assert imported["KeyFingerprint"].startswith("SHA256:"), imported
    ec2.create_tags(Resources=[imported["KeyPairId"]], Tags=[{"Key": "source", "Value": "import"}])
    pairs = {k["KeyName"]: k for k in ec2.describe_key_pairs()["KeyPairs"]}
    assert sorted(pairs) == ["boto-imported", "boto-key"], pairs
    assert pairs["boto-key"]["Tags"] == [{"Key": "Name", "Value": "laptop"}], pairs
    assert pairs["boto-imported"]["Tags"] == [{"Key": "source", "Value": "import"}], pairs
    tagged = ec2.describe_key_pairs(Filters=[{"Name": "tag:source", "Values": ["import"]}])["KeyPairs"]
    assert [k["KeyName"] for k in tagged] == ["boto-imported"], tagged
    tags = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["key-pair"]}])["Tags"]
    assert sorted((t["ResourceId"], t["ResourceType"], t["Key"]) for t in tags) == sorted(
        [
            (created["KeyPairId"], "key-pair", "Name"),
            (imported["KeyPairId"], "key-pair", "source"),
        ]
    ), tags
    expect_error("InvalidKeyPair.Duplicate", ec2.create_key_pair, KeyName="boto-key")
    expect_error(
        "InvalidParameterValue",
        ec2.create_key_pair,
        KeyName="boto-wrong",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "x"}]}],
    )
    step("create_key_pair, import_key_pair, describe_key_pairs, key pair tags")

    expect_error(
        "DryRunOperation",
        ec2.run_instances,
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        DryRun=True,
    )
    expect_error("InvalidAMIID.NotFound", ec2.run_instances, ImageId="ami-99999999", MinCount=1, MaxCount=1)
    step("run_instances refusals: DryRun, unknown image")

    run = ec2.run_instances(
        ImageId=image,
        MinCount=2,
        MaxCount=2,
        InstanceType="m1.small",
        UserData="#!/bin/sh\necho hello\n",
        KeyName="boto-key",
        Placement={"AvailabilityZone": zone},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "boto"}]}],
    )
    ids = [i["InstanceId"] for i in run["Instances"]]
    assert len(ids) == 2 and run["ReservationId"].startswith("r-"), run
    assert all(i["State"]["Name"] == "pending" for i in run["Instances"]), run
    ec2.get_waiter("instance_exists").wait(InstanceIds=ids, WaiterConfig=waiter)
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=waiter)
    step(f"run_instances {ids}, instance_exists and instance_running waiters")

    def found(filters):
        return sorted(
            i["InstanceId"]
            for r in ec2.describe_instances(Filters=filters)["Reservations"]
            for i in r["Instances"]
        )

    assert found([{"Name": "instance-state-name", "Values": ["running"]}]) == sorted(ids)
    assert found([{"Name": "tag:Name", "Values": ["boto"]}]) == sorted(ids)
    assert found([{"Name": "instance-type", "Values": ["m1.small"]}]) == sorted(ids)
    assert found([{"Name": "key-name", "Values": ["boto-key"]}]) == sorted(ids)
    assert found([{"Name": "image-id", "Values": [image]}]) == sorted(ids)
    assert found([{"Name": "instance-id", "Values": [ids[0]]}]) == [ids[0]]
    assert found([{"Name": "instance-state-name", "Values": ["stopped"]}]) == []
    paged = [
        i["InstanceId"]
        for page in ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 1})
        for r in page["Reservations"]
        for i in r["Instances"]
    ]
    assert paged == sorted(ids), paged
    described = ec2.describe_instances(InstanceIds=ids[:1])["Reservations"][0]["Instances"][0]
    assert described["KeyName"] == "boto-key" and described["ImageId"] == image, described
    assert described["Placement"]["AvailabilityZone"] == zone, described
    expect_error("InvalidInstanceID.NotFound", ec2.describe_instances, InstanceIds=["i-99999999"])
    expect_error("InvalidInstanceID.Malformed", ec2.describe_instances, InstanceIds=["i-xyz"])
    step("describe_instances: filters, paging, unknown and malformed ids")

    stopping = ec2.stop_instances(InstanceIds=ids[:1])["StoppingInstances"][0]
    assert stopping["PreviousState"]["Name"] == "running", stopping
    ec2.get_waiter("instance_stopped").wait(InstanceIds=ids[:1], WaiterConfig=waiter)
    expect_error("IncorrectInstanceState", ec2.reboot_instances, InstanceIds=ids[:1])
    starting = ec2.start_instances(InstanceIds=ids[:1])["StartingInstances"][0]
    assert starting["PreviousState"]["Name"] == "stopped", starting
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=waiter)
    ec2.reboot_instances(InstanceIds=ids)
    step("stop_instances, instance_stopped, start_instances, reboot_instances")

    ec2.create_tags(Resources=ids + [image], Tags=[{"Key": "env", "Value": "test"}])
    tags = ec2.describe_tags(Filters=[{"Name": "key", "Values": ["env"]}])["Tags"]
    assert sorted(t["ResourceId"] for t in tags) == sorted(ids + [image]), tags
    ec2.delete_tags(Resources=[image], Tags=[{"Key": "env"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [image]}])["Tags"]
    assert tags == [], tags
    shown = ec2.describe_images(ImageIds=[image])["Images"][0]
    assert shown.get("Tags", []) == [], shown
    step("create_tags, describe_tags, delete_tags")

    # Refusals the client can be made to provoke.
    expect_error("AuthFailure", client(signature, secret="0" * 40).describe_instances)
    with clock_behind(3600):
        expect_error("RequestExpired", ec2.describe_instances)

    def tamper(request, **_):
        body = request.body if isinstance(request.body, bytes) else request.body.encode()
        request.body = body + b"&InstanceId.1=" + ids[0].encode()
        request.headers["Content-Length"] = str(len(request.body))

    ec2.meta.events.register("before-send.ec2.DescribeRegions", tamper)
    expect_error("AuthFailure", ec2.describe_regions)
    ec2.meta.events.unregister("before-send.ec2.DescribeRegions", tamper)

    def unknown_action(request, **_):
        request.data["Action"] = "LaunchRockets"

    ec2.meta.events.register("before-sign.ec2.DescribeAvailabilityZones", unknown_action)
    expect_error("InvalidAction", ec2.describe_availability_zones)
    ec2.meta.events.unregister("before-sign.ec2.DescribeAvailabilityZones", unknown_action)
    step("wrong secret, expired timestamp, tampered parameter, unknown action")

    expect_error("DryRunOperation", ec2.terminate_instances, InstanceIds=ids, DryRun=True)
    assert states(ec2, ids) == ["running", "running"]
    terminating = ec2.terminate_instances(InstanceIds=ids)["TerminatingInstances"]
    assert all(t["CurrentState"]["Name"] in ("shutting-down", "terminated") for t in terminating), terminating
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig=waiter)
    assert states(ec2, ids) == ["terminated", "terminated"]
    step("terminate_instances, instance_terminated waiter")

    ec2.delete_key_pair(KeyName="boto-key")
    ec2.delete_key_pair(KeyName="boto-imported")
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    step("delete_key_pair")


if __name__ == "__main__":
    main()
