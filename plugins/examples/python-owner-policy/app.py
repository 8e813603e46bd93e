"""Owner policy: a marathon-lb policy plugin written in Python.

Every service must come from an app that names its owner in a label.
A service whose app has no owner label, or an owner that is not on the
allowed list, is left out of the HAProxy configuration with a reason.

Configuration (``--plugin python_owner_policy.wasm,key=value,...``):

``label``
    Name of the app label that holds the owner. Default: ``OWNER``.

``owners``
    Optional list of allowed owners, separated by commas (or spaces),
    e.g. ``team-a,team-b``. Without it any non-empty owner is accepted.

Any other key is a configuration error: ``review`` returns an error naming
the key, and the host denies the whole batch (fail closed).

Behaviour, per service (verdicts come back in the order of the services):

* the service's app is the app whose ``id`` equals the service's
  ``app_id``; a service whose app is not in the batch counts as an app
  without labels;
* the owner is the value of the owner label with surrounding blanks
  removed; a missing or blank label denies the service with
  ``app /x has no OWNER label``;
* with ``owners`` set, an owner not in that list denies the service with
  ``app /x: owner 'bob' is not one of team-a, team-b``;
* anything else is allowed.

Each review logs one line at info level through the host, e.g.
``reviewed 3 services, denied 1``.

Build with ``build.sh`` (componentize-py, world ``policy-plugin`` of the
repository's ``wit/`` directory).
"""

import re

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.policy import Verdict_Allow, Verdict_Deny
from wit_world.imports import host_log
from wit_world.imports.types import Severity

DEFAULT_LABEL = "OWNER"
KNOWN_KEYS = ("label", "owners")


class Settings:
    """The plugin's configuration, checked."""

    def __init__(self, label, owners):
        self.label = label
        # None means "any non-empty owner"; otherwise the allowed owners,
        # in the order the operator gave them.
        self.owners = owners


def parse_config(config):
    """Turn the host's ``[(key, value), ...]`` into Settings.

    Raises ``Err(message)`` for an unknown, repeated or empty key, which the
    host receives as the ``err`` case of ``review``'s result.
    """
    seen = {}
    for key, value in config:
        if key not in KNOWN_KEYS:
            known = ", ".join(KNOWN_KEYS)
            raise Err(f"unknown config key '{key}' (known keys: {known})")
        if key in seen:
            raise Err(f"config key '{key}' given more than once")
        seen[key] = value

    label = seen.get("label", DEFAULT_LABEL).strip()
    if not label:
        raise Err("config key 'label' is empty")

    owners = None
    if "owners" in seen:
        owners = [owner for owner in re.split(r"[,\s]+", seen["owners"]) if owner]
        if not owners:
            raise Err("config key 'owners' lists no owner")

    return Settings(label, owners)


def label_value(app, name):
    """The value of label ``name`` of ``app``, or None."""
    if app is None:
        return None
    for key, value in app.labels:
        if key == name:
            return value
    return None


def verdict_for(service, apps_by_id, settings):
    """Allow or deny one service."""
    app_id = service.app_id
    owner = label_value(apps_by_id.get(app_id), settings.label)
    owner = owner.strip() if owner is not None else ""

    if not owner:
        return Verdict_Deny(f"app {app_id} has no {settings.label} label")
    if settings.owners is not None and owner not in settings.owners:
        allowed = ", ".join(settings.owners)
        return Verdict_Deny(f"app {app_id}: owner '{owner}' is not one of {allowed}")
    return Verdict_Allow()


def plural(count, word):
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class Policy(exports.Policy):
    """The exported ``mlb:plugins/policy`` interface."""

    def review(self, apps, services, config):
        settings = parse_config(config)

        apps_by_id = {}
        for app in apps:
            apps_by_id.setdefault(app.id, app)
        # Blue/green services carry their deployment group's id
        # (HAPROXY_DEPLOYMENT_GROUP, with a leading "/"): the group's apps
        # answer for them.
        for app in apps:
            group = label_value(app, "HAPROXY_DEPLOYMENT_GROUP")
            if group:
                group_id = group if group.startswith("/") else "/" + group
                apps_by_id.setdefault(group_id, app)

        verdicts = [verdict_for(service, apps_by_id, settings) for service in services]

        denied = sum(1 for verdict in verdicts if isinstance(verdict, Verdict_Deny))
        host_log.log(
            Severity.INFO,
            f"reviewed {plural(len(services), 'service')}, denied {denied}",
        )
        return verdicts
