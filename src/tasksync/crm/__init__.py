"""Reading CRM exports: reps, accounts, open deals and closed-deal history.

Exports are read as users have them: CSV/TSV in any common encoding and delimiter, or XLSX;
headers from Salesforce, HubSpot, Zoho, Pipedrive, 纷享销客, 销售易 or 悟空CRM are recognised
(presets), as are common English and Chinese header names, and ``[crm.columns.<kind>]`` maps
anything else. Every cell that cannot be read is reported as ``file:line:column: ...``.
"""

from __future__ import annotations

from tasksync.crm.load import (
    FIELDS,
    KINDS,
    FileReport,
    compare_row_counts,
    iter_records,
    load_crm,
    read_export,
)
from tasksync.crm.presets import PRESETS, match_columns
from tasksync.crm.readers import Table, open_table
from tasksync.crm.records import Account, ClosedDeal, CrmData, Deal, Rep

__all__ = [
    "FIELDS",
    "KINDS",
    "PRESETS",
    "Account",
    "ClosedDeal",
    "CrmData",
    "Deal",
    "FileReport",
    "Rep",
    "Table",
    "compare_row_counts",
    "iter_records",
    "load_crm",
    "match_columns",
    "open_table",
    "read_export",
]
