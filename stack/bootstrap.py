"""Create the topology on the emulators: topics, subscriptions, dead-letter pull subscriptions, buckets.

Idempotent: what already exists is left as it is. The local stack runner calls these functions; docker-compose
runs the module on its own::

    PUBSUB_EMULATOR_HOST=pubsub:8085 STORAGE_EMULATOR_HOST=http://storage:4443 GOOGLE_CLOUD_PROJECT=shop-local \
    SERVICE_URL_INVENTORY=http://inventory:8080/ python -m stack.bootstrap [--topology topology.yaml]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import grpc
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.protobuf.duration_pb2 import Duration
from google.pubsub_v1 import (
    DeadLetterPolicy,
    PublisherClient,
    PushConfig,
    RetryPolicy,
    SubscriberClient,
)
from google.pubsub_v1 import Subscription as PubsubSubscription
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

from stack.envnames import service_url_var
from stack.errors import StackError
from stack.processes import http_answers, tcp_accepts
from stack.topology import DEFAULT_PATH, Topology, load_topology

CALL_TIMEOUT_SECONDS = 30.0
WAIT_FOR_EMULATORS_SECONDS = 60.0


def topic_path(project: str, topic: str) -> str:
    return f"projects/{project}/topics/{topic}"


def subscription_path(project: str, subscription: str) -> str:
    return f"projects/{project}/subscriptions/{subscription}"


def pubsub_admin_clients(emulator_host: str) -> tuple[PublisherClient, SubscriberClient]:
    """Clients bound to the emulator explicitly, without touching this process's PUBSUB_EMULATOR_HOST."""
    publisher = PublisherClient(transport=PublisherGrpcTransport(channel=grpc.insecure_channel(emulator_host)))
    subscriber = SubscriberClient(transport=SubscriberGrpcTransport(channel=grpc.insecure_channel(emulator_host)))
    return publisher, subscriber


def storage_client(emulator_url: str, project: str) -> storage.Client:
    return storage.Client(
        project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": emulator_url}
    )


def create_topics(publisher: PublisherClient, topology: Topology, project: str) -> None:
    for topic in topology.topics.values():
        with _already_there():
            publisher.create_topic(name=topic_path(project, topic.name), timeout=CALL_TIMEOUT_SECONDS)


def create_subscriptions(
    subscriber: SubscriberClient, topology: Topology, project: str, service_urls: Mapping[str, str]
) -> None:
    """Push subscriptions from the topology, then the derived pull subscription on each dead-letter topic."""
    for sub in topology.subscriptions.values():
        dead_letter_policy = None
        if sub.dead_letter_topic is not None:
            dead_letter_policy = DeadLetterPolicy(
                dead_letter_topic=topic_path(project, sub.dead_letter_topic),
                max_delivery_attempts=sub.max_delivery_attempts,
            )
        request = PubsubSubscription(
            name=subscription_path(project, sub.name),
            topic=topic_path(project, sub.topic),
            push_config=PushConfig(push_endpoint=push_endpoint(service_urls[sub.push_to])),
            ack_deadline_seconds=sub.ack_deadline_seconds,
            # The emulator stores the filter but delivers everything; set it anyway so local equals cloud.
            filter=sub.filter or "",
            dead_letter_policy=dead_letter_policy,
            retry_policy=RetryPolicy(
                minimum_backoff=Duration(seconds=sub.retry_minimum_backoff_seconds),
                maximum_backoff=Duration(seconds=sub.retry_maximum_backoff_seconds),
            ),
            message_retention_duration=Duration(seconds=sub.message_retention_seconds),
            enable_message_ordering=sub.enable_message_ordering,
        )
        with _already_there():
            subscriber.create_subscription(request=request, timeout=CALL_TIMEOUT_SECONDS)
    for pull in topology.dead_letter_pulls:
        request = PubsubSubscription(
            name=subscription_path(project, pull.name),
            topic=topic_path(project, pull.topic),
            ack_deadline_seconds=pull.ack_deadline_seconds,
            message_retention_duration=Duration(seconds=pull.message_retention_seconds),
        )
        with _already_there():
            subscriber.create_subscription(request=request, timeout=CALL_TIMEOUT_SECONDS)


def create_pubsub_topology(
    emulator_host: str, topology: Topology, project: str, service_urls: Mapping[str, str]
) -> None:
    missing = sorted({s.push_to for s in topology.subscriptions.values()} - set(service_urls))
    if missing:
        raise StackError(f"no URL for pushed-to service(s) {', '.join(missing)}")
    publisher, subscriber = pubsub_admin_clients(emulator_host)
    try:
        create_topics(publisher, topology, project)
        create_subscriptions(subscriber, topology, project, service_urls)
    finally:
        publisher.transport.close()
        subscriber.transport.close()


def create_buckets(emulator_url: str, topology: Topology, project: str) -> None:
    client = storage_client(emulator_url, project)
    try:
        for bucket in topology.buckets.values():
            with _already_there():
                client.create_bucket(bucket.name, timeout=CALL_TIMEOUT_SECONDS)
    finally:
        client.close()


def bootstrap(
    topology: Topology, project: str, *, pubsub_host: str, storage_url: str, service_urls: Mapping[str, str]
) -> None:
    """Everything at once, for callers whose emulators are all up (docker-compose)."""
    create_pubsub_topology(pubsub_host, topology, project, service_urls)
    create_buckets(storage_url, topology, project)


def push_endpoint(service_url: str) -> str:
    return service_url if service_url.endswith("/") else f"{service_url}/"


def service_urls_from_env(topology: Topology, environ: Mapping[str, str]) -> dict[str, str]:
    pushed_to = {s.push_to for s in topology.subscriptions.values()}
    missing = sorted(service_url_var(name) for name in pushed_to if not environ.get(service_url_var(name)))
    if missing:
        raise StackError(f"set {', '.join(missing)} (push endpoint of each pushed-to service)")
    return {name: environ[var] for name in topology.services if environ.get(var := service_url_var(name))}


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.bootstrap", description=__doc__.split("\n\n")[0])
    parser.add_argument("--topology", type=Path, default=DEFAULT_PATH, help="topology file (default: %(default)s)")
    args = parser.parse_args(argv)
    env = os.environ if environ is None else environ
    try:
        project = _required_env(env, "GOOGLE_CLOUD_PROJECT")
        pubsub_host = _required_env(env, "PUBSUB_EMULATOR_HOST")
        storage_url = _required_env(env, "STORAGE_EMULATOR_HOST")
        topology = load_topology(args.topology)
        service_urls = service_urls_from_env(topology, env)
        _wait_for_emulators(pubsub_host, storage_url)
        bootstrap(topology, project, pubsub_host=pubsub_host, storage_url=storage_url, service_urls=service_urls)
    except StackError as exc:
        print(f"bootstrap: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"bootstrap: {len(topology.topics)} topics, "
        f"{len(topology.subscriptions) + len(topology.dead_letter_pulls)} subscriptions, "
        f"{len(topology.buckets)} buckets in project {project}"
    )
    return 0


def _wait_for_emulators(pubsub_host: str, storage_url: str) -> None:
    """Compose may start the bootstrap before the emulators listen; wait a bounded time for both."""
    pubsub = urlsplit(f"//{pubsub_host}")
    storage_ = urlsplit(storage_url)
    if not (pubsub.hostname and pubsub.port and storage_.hostname):
        raise StackError(
            f"PUBSUB_EMULATOR_HOST must be host:port and STORAGE_EMULATOR_HOST a URL, got "
            f"{pubsub_host!r} and {storage_url!r}"
        )
    storage_port = storage_.port or (443 if storage_.scheme == "https" else 80)
    deadline = time.monotonic() + WAIT_FOR_EMULATORS_SECONDS
    while not (
        tcp_accepts(pubsub.port, pubsub.hostname) and http_answers(storage_port, "/storage/v1/b", storage_.hostname)
    ):
        if time.monotonic() > deadline:
            raise StackError(
                f"emulators not reachable after {WAIT_FOR_EMULATORS_SECONDS:.0f} s "
                f"(Pub/Sub at {pubsub_host}, Cloud Storage at {storage_url})"
            )
        time.sleep(0.5)


def _required_env(env: Mapping[str, str], key: str) -> str:
    value = env.get(key)
    if not value:
        raise StackError(f"{key} is not set")
    return value


def _already_there() -> contextlib.suppress:
    # Created by an earlier run: the bootstrap is idempotent. (Cloud Storage says 409 Conflict.)
    return contextlib.suppress(exceptions.AlreadyExists, exceptions.Conflict)


if __name__ == "__main__":
    sys.exit(main())
