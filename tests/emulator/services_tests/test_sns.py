"""SNS module: topics, subscriptions and confirmation, publish, tags."""

import json

import pytest

from awsemu import base
from awsemu.base import AwsError
from awsemu.services.sns import Sns

from test_ecs import call


def sns():
    em = base.Emulator()
    em.register(Sns)
    return em


def test_topics_are_idempotent_and_validated():
    em = sns()
    arn = call(em, "sns", "CreateTopic", Name="web-alerts",
               Attributes={"DisplayName": "Web"})["TopicArn"]
    assert arn == f"arn:aws:sns:us-east-1:{base.ACCOUNT_ID}:web-alerts"
    assert call(em, "sns", "CreateTopic", Name="web-alerts",
                Attributes={"DisplayName": "Web"})["TopicArn"] == arn
    with pytest.raises(AwsError) as e:
        call(em, "sns", "CreateTopic", Name="web-alerts", Attributes={"DisplayName": "Other"})
    assert e.value.code == "InvalidParameter"
    for bad in ("has space", "x" * 257, "fifo.fifo"):
        with pytest.raises(AwsError) as e:
            call(em, "sns", "CreateTopic", Name=bad)
        assert e.value.code == "InvalidParameter"
    attrs = call(em, "sns", "GetTopicAttributes", TopicArn=arn)["Attributes"]
    assert attrs["DisplayName"] == "Web" and json.loads(attrs["Policy"])["Statement"]
    call(em, "sns", "SetTopicAttributes", TopicArn=arn, AttributeName="DisplayName",
         AttributeValue="Web app")
    assert call(em, "sns", "GetTopicAttributes", TopicArn=arn)["Attributes"][
        "DisplayName"] == "Web app"
    with pytest.raises(AwsError) as e:
        call(em, "sns", "SetTopicAttributes", TopicArn=arn, AttributeName="Nope",
             AttributeValue="x")
    assert e.value.code == "InvalidParameter"
    call(em, "sns", "TagResource", ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}])
    assert call(em, "sns", "ListTagsForResource", ResourceArn=arn)["Tags"] == [
        {"Key": "a", "Value": "1"}]
    call(em, "sns", "DeleteTopic", TopicArn=arn)
    call(em, "sns", "DeleteTopic", TopicArn=arn)   # deleting twice is fine
    with pytest.raises(AwsError) as e:
        call(em, "sns", "GetTopicAttributes", TopicArn=arn)
    assert e.value.code == "NotFound"
    with pytest.raises(AwsError) as e:
        call(em, "sns", "ListTagsForResource", ResourceArn=arn)
    assert e.value.code == "ResourceNotFound"


def test_subscriptions_confirmation_and_pagination():
    em = sns()
    arn = call(em, "sns", "CreateTopic", Name="t")["TopicArn"]
    assert call(em, "sns", "Subscribe", TopicArn=arn, Protocol="email",
                Endpoint="dev@example.com")["SubscriptionArn"] == "pending confirmation"
    with pytest.raises(AwsError) as e:
        call(em, "sns", "Subscribe", TopicArn=arn, Protocol="email", Endpoint="not-an-email")
    assert e.value.code == "InvalidParameter"
    with pytest.raises(AwsError) as e:
        call(em, "sns", "Subscribe", TopicArn=arn, Protocol="https", Endpoint="http://x")
    assert e.value.code == "InvalidParameter"
    for i in range(120):
        call(em, "sns", "Subscribe", TopicArn=arn, Protocol="email",
             Endpoint=f"u{i}@example.com")
    page = call(em, "sns", "ListSubscriptionsByTopic", TopicArn=arn)
    assert len(page["Subscriptions"]) == 100
    assert page["Subscriptions"][0]["SubscriptionArn"] == "PendingConfirmation"
    rest = call(em, "sns", "ListSubscriptionsByTopic", TopicArn=arn,
                NextToken=page["NextToken"])
    assert len(rest["Subscriptions"]) == 21 and "NextToken" not in rest
    attrs = call(em, "sns", "GetTopicAttributes", TopicArn=arn)["Attributes"]
    assert attrs["SubscriptionsPending"] == "121"
    assert em.services["sns"].confirm_all_internal() == 121
    subs = call(em, "sns", "ListSubscriptionsByTopic", TopicArn=arn)["Subscriptions"]
    first = subs[0]["SubscriptionArn"]
    assert first.startswith(arn + ":")
    view = em.services["sns"].subscriptions_view()
    assert view[0]["Endpoint"] == "dev@example.com" and view[0]["PendingConfirmation"] is False
    assert call(em, "sns", "Subscribe", TopicArn=arn, Protocol="email",
                Endpoint="dev@example.com")["SubscriptionArn"] == first
    call(em, "sns", "Unsubscribe", SubscriptionArn=first)
    with pytest.raises(AwsError) as e:
        call(em, "sns", "Unsubscribe", SubscriptionArn=first)
    assert e.value.code == "NotFound"
    assert call(em, "sns", "GetTopicAttributes", TopicArn=arn)["Attributes"][
        "SubscriptionsConfirmed"] == "120"


def test_publish():
    em = sns()
    arn = call(em, "sns", "CreateTopic", Name="t")["TopicArn"]
    mid = call(em, "sns", "Publish", TopicArn=arn, Subject="Rollback", Message="body",
               MessageAttributes={"app": {"DataType": "String", "StringValue": "web"}})[
        "MessageId"]
    p = em.sns_publishes[-1]
    assert (p["topic_arn"], p["subject"], p["message"], p["message_id"]) == \
        (arn, "Rollback", "body", mid)
    assert p["attributes"] == {"app": {"DataType": "String", "Value": "web"}}
    for kw in ({"Subject": "x" * 101, "Message": "m"}, {"Subject": "a\nb", "Message": "m"},
               {"Message": ""}, {"Message": "x" * (256 * 1024 + 1)},
               {"Message": "{}", "MessageStructure": "json"}):
        with pytest.raises(AwsError) as e:
            call(em, "sns", "Publish", TopicArn=arn, **kw)
        assert e.value.code == "InvalidParameter"
    with pytest.raises(AwsError) as e:
        call(em, "sns", "Publish", TopicArn=arn + "x", Message="m")
    assert e.value.code == "NotFound"
    assert len(em.sns_publishes) == 1
    assert em.services["sns"].publish_internal(arn + "x", "s", "m") is None
