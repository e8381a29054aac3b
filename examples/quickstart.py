"""The README's quick start: invite a programmer, accept, check a permission.

Run it with ``python examples/quickstart.py``; it keeps everything in memory.
"""

from teamaccess import MemoryMailer, MemoryStore, PermissionSet, TeamAccess

team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="change me")
acct = team.create_account(name="Muster GmbH", owner_id="u1", owner_email="chef@muster.de")
inv = team.invite(
    acct.id,
    actor_id="u1",
    email="dev@agentur.de",
    permissions=PermissionSet.of("billing.view", "support.tickets"),
)
member = team.accept_invitation(inv.token, user_id="u2", email="dev@agentur.de")

print(team.can("u2", acct.id, "billing.view"))  # True
print(team.can("u2", acct.id, "billing.pay"))  # False
print([m.user_id for m in team.members(acct.id)])  # ['u1', 'u2']
