"""ensure_topics brings an existing topic's configs to what the stack declares (a stack
made before a retention or message-size change gets it, data kept)."""

from __future__ import annotations

import uuid

from confluent_kafka.admin import ConfigResource, ResourceType

from flowgate.devstack import kafka


def configs(admin, name: str) -> dict[str, str]:
    resource = ConfigResource(ResourceType.TOPIC, name)
    return {k: v.value for k, v in next(iter(admin.describe_configs([resource]).values())).result().items()}


def test_an_existing_topics_configs_follow_the_declaration(running_stack):
    name = f"test.topic-configs-{uuid.uuid4().hex[:8]}"
    admin = kafka._admin(running_stack)
    kafka.ensure_topics(running_stack, [kafka.Topic(name, 1, 1, "test")])
    assert configs(admin, name)["max.message.bytes"] != "4194304"
    declared = kafka.Topic(name, 1, 2, "test", config={"max.message.bytes": "4194304"})
    assert kafka.ensure_topics(running_stack, [declared]) == [], "it exists: nothing created"
    now = configs(admin, name)
    assert (now["max.message.bytes"], now["retention.ms"]) == ("4194304", str(2 * 3600 * 1000))
    assert kafka._reconcile_configs(admin, [declared]) == [], "already as declared: nothing changed"
    admin.delete_topics([name])
