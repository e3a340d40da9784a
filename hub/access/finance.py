"""Who may use the finance link: the commitment feed, actuals, the finance page.

The policy decides (``config/policy.toml``): a role that may read the
``commitments`` section and acts for the ``payment`` purpose. A finance
system's client credentials are a token whose roles claim carries such a role
(an Entra ID app role, say ``finance_officer``), so people and the system are
treated alike and audited alike.
"""

from __future__ import annotations

from hub.access.policy import Policy
from hub.access.rules import Caller
from hub.errors import Forbidden

FINANCE_SECTION = "commitments"
FINANCE_PURPOSE = "payment"


def may_use_finance(caller: Caller, policy: Policy) -> bool:
    """True when the caller's role reads commitments and the caller acts for payment."""
    rule = policy.role(caller.role)
    return (rule is not None and FINANCE_SECTION in rule.read and FINANCE_PURPOSE in rule.purposes
            and caller.purpose == FINANCE_PURPOSE)


def require_finance(caller: Caller, policy: Policy) -> None:
    """Refuse (Forbidden, naming the rule) a caller who may not use the finance link."""
    if not may_use_finance(caller, policy):
        raise Forbidden(f"the finance link needs a role that reads {FINANCE_SECTION} for the "
                        f"{FINANCE_PURPOSE} purpose; you are acting as {caller.role} for {caller.purpose}")
