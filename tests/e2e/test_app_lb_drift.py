"""End-to-end: the load balancer's subnets and security groups changed by
hand are put back. The example application (examples/fraud-model.yaml) is
converged by the daemon; then, through boto3, an extra security group is
attached to its ALB and one of its subnets is swapped for a subnet in a
third zone. The next resync reverts both (SetSubnets, SetSecurityGroups),
reports each as a DriftCorrected event, and the resyncs after it make no
mutating call. Waits are bounded polls."""

import os
import shutil

from harness import wait_for
from test_application import Aws, Daemon, check_network, events, mutating

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP = "fraud-model"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/fraud:1.4.2"
REVERT_TIMEOUT = 30.0   # the daemon resyncs every second


def lb_network(elb):
    lb = elb.describe_load_balancers(Names=[f"{APP}-alb"])["LoadBalancers"][0]
    return (sorted(z["SubnetId"] for z in lb["AvailabilityZones"]), lb["SecurityGroups"],
            lb["LoadBalancerArn"])


def test_alb_subnets_and_security_groups_drift_reverted(aviary, emulator, tmp_path):
    aws = Aws(emulator)
    example = os.path.join(REPO, "examples", "fraud-model.yaml")
    assert IMAGE in open(example).read()
    emulator.push_image(IMAGE, create_repository=True)
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(example, src / "fraud-model.yaml")
    d = Daemon(aviary, str(src), str(tmp_path / "state"))
    d.wait_ready(APP)
    net = check_network(aws, APP)
    elb, ec2 = aws("elbv2"), aws("ec2")
    subnets, groups, arn = lb_network(elb)
    assert subnets == net["public"] and groups == [net["lb_sg"]]
    drift_before = {(e["message"], e["count"]) for e in events(d.obj(APP), "DriftCorrected")}

    # By hand: a third-zone subnet and a security group of the same VPC,
    # neither of them aviary's, attached to the load balancer.
    zones = {s["SubnetId"]: s["AvailabilityZone"]
             for s in ec2.describe_subnets(SubnetIds=net["public"])["Subnets"]}
    third = sorted({"us-east-1a", "us-east-1b", "us-east-1c"} - set(zones.values()))[0]
    extra_subnet = ec2.create_subnet(VpcId=net["vpc"], CidrBlock="10.40.200.0/24",
                                     AvailabilityZone=third)["Subnet"]["SubnetId"]
    extra_sg = ec2.create_security_group(GroupName="opened-by-hand", Description="by hand",
                                         VpcId=net["vpc"])["GroupId"]
    kept = net["public"][0]
    # (The daemon keeps running: a resync may revert one change before the
    # other is made, which the checks below allow.)
    out = elb.set_security_groups(LoadBalancerArn=arn, SecurityGroups=[net["lb_sg"], extra_sg])
    assert out["SecurityGroupIds"] == [net["lb_sg"], extra_sg]
    out = elb.set_subnets(LoadBalancerArn=arn, Subnets=[kept, extra_subnet])
    assert sorted(z["SubnetId"] for z in out["AvailabilityZones"]) == sorted([kept, extra_subnet])

    # The next resync puts both back and says so.
    wait_for(lambda: lb_network(elb)[:2] == (net["public"], [net["lb_sg"]]),
             timeout=REVERT_TIMEOUT, interval=0.2, message="subnets and security groups reverted")

    def new_drift():
        return [e["message"] for e in events(d.obj(APP), "DriftCorrected")
                if (e["message"], e["count"]) not in drift_before]

    resource = f"load balancer {APP}-alb changed outside aviary"
    want = (f"{resource} (SecurityGroups: {net['lb_sg']}, {extra_sg} -> {net['lb_sg']}); reverted",
            f"{resource} (Subnets: ")
    wait_for(lambda: all(any(m.startswith(w) for m in new_drift()) for w in want),
             timeout=REVERT_TIMEOUT, interval=0.2, message="DriftCorrected events")
    subnet_event = [m for m in new_drift() if m.startswith(want[1])][0]
    assert extra_subnet in subnet_event.split(" -> ")[0], subnet_event
    assert extra_subnet not in subnet_event.split(" -> ")[1], subnet_event
    assert all(s in subnet_event.split(" -> ")[1] for s in net["public"]), subnet_event
    calls = [c["operation"] for c in emulator.calls(service="elbv2", mutating=True)
             if c["status"] == 200]
    assert calls.count("SetSubnets") == 2 and calls.count("SetSecurityGroups") == 2, calls
    d.wait_ready(APP)

    # Converged again: further resyncs make no mutating call, and the hand-made
    # subnet and group are not aviary's to delete.
    emulator.clear_calls()
    d.wait_reconciles(3)
    assert mutating(emulator) == []
    assert len(ec2.describe_subnets(SubnetIds=[extra_subnet])["Subnets"]) == 1
    assert len(ec2.describe_security_groups(GroupIds=[extra_sg])["SecurityGroups"]) == 1

    # /metrics counts the batchable reads: one application has nobody to
    # share with, so they went out alone and nothing was merged.
    code, text = d.get("/metrics")
    assert code == 200
    batch = {line.split('"')[1]: float(line.split()[-1]) for line in text.splitlines()
             if line.startswith("aviary_read_batch_total{")}
    assert batch["direct"] > 0 and batch["merged"] == 0 and batch["served"] == 0, batch
    assert d.stop() == 0
