"""The use cases, one module each, behind the ``TeamAccess`` facade.

- ``core``: settings, the unit of work, audit and the permission rules every use case shares
- ``accounts``: accounts, members, ownership, the authorization hot path, the audit log
- ``invitations``: invite, resend, revoke, inspect, accept, decline
- ``contacts``: contacts, recipients and notifications
- ``delivery``: the outbox and the worker's runs (claim, lease, retry); its send and
  record path in ``delivery_send``, the rules of a try's outcome in ``delivery_rules``
- ``lifecycle``: suspend and reactivate members, the instant their access ends
- ``scopes``: grants on single resources, forgetting a deleted resource
- ``privacy``: a person's data: export, erasure; purging what retention lets go
- ``importing``: bulk import of whole accounts
- ``team``: ``TeamAccess`` itself, the thin facade over them

``privacy`` and ``importing`` hold only their methods: the work (``privacy_work``,
``import_rows``) loads on the first call, so ``import teamaccess`` stays light.
"""

from .team import TeamAccess

__all__ = ["TeamAccess"]
