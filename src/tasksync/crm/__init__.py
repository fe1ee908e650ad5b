"""Reading CRM exports: reps, accounts, open deals and closed-deal history.

Column names are mapped in configuration (``[crm.columns.<kind>]``), so a new CRM's headers
need no code change. Every cell that cannot be read is reported as ``file:line:column: ...``.
"""

from __future__ import annotations

from tasksync.crm.load import FIELDS, load_crm
from tasksync.crm.records import Account, ClosedDeal, CrmData, Deal, Rep

__all__ = ["FIELDS", "Account", "ClosedDeal", "CrmData", "Deal", "Rep", "load_crm"]
