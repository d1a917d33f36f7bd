"""The aws CLI, unmodified, against cloudgate's EC2 front (spec/EC2.md
section 9.1): `aws --endpoint-url URL ec2 ...`, its waiters, and a wrong
secret. Run by tests/integration/ec2_clients.rs with the virtualenv that
.ci/setup creates (the CLI runs as `python -m awscli` from it).

Environment: CLOUDGATE_URL (http://host:port), EC2_USER, EC2_SECRET (the
SHA1 hex of the password), EC2_IMAGE (an ami- id the user registered).

Exits 0 when every step works; prints one line per step.
"""

import json
import os
import subprocess
import sys
import time


def step(what):
    print("ok", what, flush=True)


def aws(*args, secret=None, check=True):
    env = dict(os.environ)
    env.update(
        {
            "AWS_ACCESS_KEY_ID": os.environ["EC2_USER"],
            "AWS_SECRET_ACCESS_KEY": secret or os.environ["EC2_SECRET"],
            "AWS_DEFAULT_REGION": "us-east-1",
            # Nothing from the machine's own AWS setup.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_MAX_ATTEMPTS": "1",
        }
    )
    command = [
        sys.executable,
        "-m",
        "awscli",
        "--endpoint-url",
        os.environ["CLOUDGATE_URL"],
        "--output",
        "json",
        "ec2",
        *args,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done


def out(*args):
    text = aws(*args).stdout
    return json.loads(text) if text.strip() else {}


def state_of(instance):
    doc = out("describe-instances", "--instance-ids", instance)
    return doc["Reservations"][0]["Instances"][0]["State"]["Name"]


def settle(instance, wanted):
    """Polls until the instance shows `wanted`, so that the CLI's waiter
    (15 s between its polls) finds it there at its first poll."""
    deadline = time.time() + 60
    while state_of(instance) != wanted:
        assert time.time() < deadline, f"{instance} never {wanted}"
        time.sleep(0.2)


def main():
    image = os.environ["EC2_IMAGE"]

    regions = out("describe-regions")["Regions"]
    assert regions[0]["RegionName"] == "opennebula", regions
    out("describe-availability-zones")
    images = [i["ImageId"] for i in out("describe-images", "--owners", "self")["Images"]]
    assert image in images, images
    step("describe-regions, describe-availability-zones, describe-images")

    key = out("create-key-pair", "--key-name", "cli-key", "--key-type", "ed25519")
    assert "PRIVATE KEY" in key["KeyMaterial"], key
    step("create-key-pair")

    run = out(
        "run-instances",
        "--image-id",
        image,
        "--count",
        "1",
        "--instance-type",
        "m1.small",
        "--key-name",
        "cli-key",
        "--user-data",
        "hello from the cli",
    )
    instance = run["Instances"][0]["InstanceId"]
    aws("wait", "instance-exists", "--instance-ids", instance)
    aws("wait", "instance-running", "--instance-ids", instance)
    step(f"run-instances {instance}, wait instance-running")

    found = out(
        "describe-instances",
        "--filters",
        "Name=instance-state-name,Values=running",
        "Name=key-name,Values=cli-key",
    )
    ids = [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]]
    assert ids == [instance], found
    step("describe-instances --filters")

    out("stop-instances", "--instance-ids", instance)
    settle(instance, "stopped")
    aws("wait", "instance-stopped", "--instance-ids", instance)
    out("start-instances", "--instance-ids", instance)
    settle(instance, "running")
    aws("wait", "instance-running", "--instance-ids", instance)
    aws("reboot-instances", "--instance-ids", instance)
    step("stop-instances, wait instance-stopped, start-instances, reboot-instances")

    aws("create-tags", "--resources", instance, "--tags", "Key=Name,Value=cli")
    tags = out("describe-tags", "--filters", f"Name=resource-id,Values={instance}")["Tags"]
    assert [(t["Key"], t["Value"]) for t in tags] == [("Name", "cli")], tags
    step("create-tags, describe-tags")

    wrong = aws("describe-instances", secret="0" * 40, check=False)
    assert wrong.returncode != 0 and "AuthFailure" in wrong.stderr, wrong.stderr
    unknown = aws("run-instances", "--image-id", "ami-99999999", "--count", "1", check=False)
    assert unknown.returncode != 0 and "InvalidAMIID.NotFound" in unknown.stderr, unknown.stderr
    step("wrong secret, unknown image")

    out("terminate-instances", "--instance-ids", instance)
    settle(instance, "terminated")
    aws("wait", "instance-terminated", "--instance-ids", instance)
    aws("delete-key-pair", "--key-name", "cli-key")
    step("terminate-instances, wait instance-terminated, delete-key-pair")


if __name__ == "__main__":
    main()
