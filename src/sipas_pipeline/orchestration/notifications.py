"""Failures reach people: one Prefect automation (created by `sipas deploy` through Prefect's automations API)
fires on every Failed, Crashed or Late flow run of the watched deployments and sends its notification through
the webhook block `sipas-failures`, the e-mail block `sipas-smtp-email/sipas-failures` (`mail.SmtpEmail`) and any
other notification block named."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect.automations import EventTrigger, Posture, SendNotification
from prefect.blocks.core import Block
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.events.schemas.automations import AutomationCore

from sipas_pipeline.errors import InputError

AUTOMATION = "sipas-runs-failed-crashed-late"
WEBHOOK_BLOCK = "sipas-failures"
WATCHED_STATES = ("Failed", "Crashed", "Late")
SUBJECT = "SIPAS: {{ deployment.name }} run {{ flow_run.name }} is {{ flow_run.state.name }}"
BODY = ("Deployment {{ flow.name }}/{{ deployment.name }}, flow run {{ flow_run.name }} ({{ flow_run.id }}): "
        "{{ flow_run.state.name }}. {{ flow_run.state.message }} "
        "Parameters: {{ flow_run.parameters }}. Expected start {{ flow_run.expected_start_time }}.")


def save_webhook(url: str) -> UUID:
    """The webhook block `sipas-failures` posting JSON {subject, body} to `url` (replaced when it exists)."""
    block = CustomWebhookNotificationBlock(name=WEBHOOK_BLOCK, url=url, method="POST",
                                           json_data={"subject": "{{subject}}", "body": "{{body}}"})
    return block.save(WEBHOOK_BLOCK, overwrite=True)


def save_email(block: Block) -> UUID:
    """The e-mail block (`mail.smtp_block`) saved as `sipas-failures` (replaced when it exists)."""
    return block.save(WEBHOOK_BLOCK, overwrite=True)


def block_id(slug_and_name: str) -> UUID:
    """The id of a saved notification block named `type-slug/name` (e.g. `sendgrid-email/ops`); one line when missing."""
    from prefect.exceptions import ObjectNotFound

    slug, _, name = slug_and_name.partition("/")
    if not name:
        raise InputError(f"notification block {slug_and_name!r}: give it as TYPE/NAME, e.g. sendgrid-email/ops")
    try:
        block = Block.load(slug_and_name)
        with get_client(sync_client=True) as client:
            document = client.read_block_document_by_name(name, block_type_slug=slug)
    except (ValueError, KeyError, ObjectNotFound) as exc:
        raise InputError(f"notification block {slug_and_name!r}: not found ({exc}); save it first (Prefect UI, Blocks)") from exc
    if "notify" not in block.get_block_capabilities():
        raise InputError(f"block {slug_and_name!r} cannot send notifications (it has no notify capability)")
    return document.id


def trigger(deployment_ids: list[UUID]) -> EventTrigger:
    """Any of the watched states of a flow run of one of the deployments, each time (reactive, threshold 1)."""
    return EventTrigger(
        expect={f"prefect.flow-run.{s}" for s in WATCHED_STATES},
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related={"prefect.resource.role": "deployment",
                       "prefect.resource.id": [f"prefect.deployment.{d}" for d in deployment_ids]},
        posture=Posture.Reactive, threshold=1, within=timedelta(0))


def watch(deployment_ids: list[UUID], blocks: list[UUID]) -> UUID:
    """(Re)create the automation `sipas-runs-failed-crashed-late` (the one of that name is replaced); its id."""
    if not blocks:
        raise InputError("no notification block: give sipas deploy --webhook URL, --email-to ADDR --smtp HOST:PORT, "
                         "or --notify-block TYPE/NAME")
    automation = AutomationCore(
        name=AUTOMATION, enabled=True,
        description="A SIPAS run Failed, Crashed or is Late: tell the people on the notification blocks.",
        trigger=trigger(deployment_ids),
        actions=[SendNotification(block_document_id=b, subject=SUBJECT, body=BODY) for b in blocks])
    with get_client(sync_client=True) as client:
        for old in client.read_automations_by_name(AUTOMATION):
            client.delete_automation(old.id)
        return client.create_automation(automation)


def described(automation_id: UUID) -> dict[str, Any]:
    """What the server holds of the automation: its states, deployments and the blocks it notifies."""
    with get_client(sync_client=True) as client:
        a = client.read_automation(automation_id)
    return {"name": a.name, "enabled": a.enabled, "expect": sorted(a.trigger.expect),
            "blocks": [str(x.block_document_id) for x in a.actions]}
