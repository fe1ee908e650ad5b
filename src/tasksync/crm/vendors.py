"""How known CRMs name their export columns (presets) and how everyone else tends to (synonyms).

Data only: :mod:`tasksync.crm.presets` matches a file's headers against it. A preset names, per
record kind and field, the headers one CRM writes (Salesforce, HubSpot, Zoho, Pipedrive, 纷享销客,
销售易, 悟空CRM) and other headers typical of its exports (its *signature*, a tie-break);
:data:`SYNONYMS` holds common English and Chinese names per field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PRESETS", "SYNONYMS", "HeaderName", "Headers", "Preset"]

#: One way a field may be written: a header, or headers whose cells are joined with a space.
HeaderName = str | tuple[str, ...]
Headers = dict[str, tuple[HeaderName, ...]]  # field -> header names, preferred first


@dataclass(frozen=True)
class Preset:
    """How one CRM names its export columns, per record kind."""

    name: str
    label: str
    columns: dict[str, Headers]
    signature: dict[str, tuple[str, ...]] = field(default_factory=dict)  # other typical headers


def _with(base: Headers, **more: tuple[str, ...]) -> Headers:
    """A deals mapping turned into a history one (history has no name, close date or status
    of its own: its ``closed`` date and won/lost ``stage`` are given in ``more``)."""
    skip = {"name", "close_date", "status"}
    return {**{f: h for f, h in base.items() if f not in skip}, **more}


_SF_DEALS: Headers = {
    "id": ("Opportunity ID", "Id", "18 Digit Opportunity ID", "Opportunity Id"),
    "name": ("Opportunity Name", "Name"),
    "stage": ("Stage", "StageName"),
    "account_id": ("Account ID", "AccountId", "Account Name"),
    "value": ("Amount (converted)", "Amount"),  # converted: in the corporate currency
    "created": ("Created Date", "CreatedDate"),
    "close_date": ("Close Date", "CloseDate"),
    "product": ("Product Name", "Primary Product"),
    "owner": ("Opportunity Owner", "Owner Name", "Owner Email", "OwnerId", "Owner ID"),
}
_HS_DEALS: Headers = {
    "id": ("Record ID", "Deal ID", "hs_object_id"),
    "name": ("Deal Name", "dealname"),
    "stage": ("Deal Stage", "dealstage"),
    "account_id": (
        "Associated Company IDs",
        "Associated Company ID",
        "Associated Company",
        "Company name",
    ),
    "value": ("Amount in company currency", "Amount"),
    "created": ("Create Date", "createdate"),
    "close_date": ("Close Date", "closedate"),
    "product": ("Product", "Products"),
    "owner": ("Deal owner", "HubSpot Owner", "hubspot_owner_id"),
}
_ZOHO_DEALS: Headers = {
    "id": ("Record Id", "Deal Id", "Id"),
    "name": ("Deal Name",),
    "stage": ("Stage",),
    "account_id": ("Account Name.id", "Account Id", "Account Name"),
    "value": ("Amount",),
    "created": ("Created Time",),
    "close_date": ("Closing Date",),
    "product": ("Product Name", "Product"),
    "owner": ("Deal Owner", "Deal Owner.name"),
}
_PD_DEALS: Headers = {
    "id": ("Deal - ID", "ID"),
    "name": ("Deal - Title", "Title"),
    "stage": ("Deal - Stage", "Stage"),
    "status": ("Deal - Status", "Status"),
    "account_id": ("Deal - Organization ID", "Deal - Organization", "Organization"),
    "value": ("Deal - Value", "Value"),
    "created": ("Deal - Deal created", "Deal created"),
    "close_date": ("Deal - Expected close date", "Expected close date"),
    "product": ("Deal - Product name", "Deal - Products"),
    "owner": ("Deal - Owner", "Owner"),
}
_FX_DEALS: Headers = {
    "id": ("商机编号", "数据ID", "商机ID"),
    "name": ("商机名称",),
    "stage": ("商机阶段", "销售阶段"),
    "status": ("商机状态",),
    "account_id": ("客户ID", "客户编号", "客户名称"),
    "value": ("商机金额", "预计销售金额", "销售金额"),
    "created": ("创建时间",),
    "close_date": ("预计成交日期", "结单日期"),
    "product": ("产品名称", "产品"),
    "owner": ("负责人",),
}
_XSY_DEALS: Headers = {
    "id": ("商机ID", "商机编号"),
    "name": ("商机名称",),
    "stage": ("销售阶段",),
    "status": ("商机状态",),
    "account_id": ("客户ID", "客户名称"),
    "value": ("商机金额", "金额"),
    "created": ("创建日期", "创建时间"),
    "close_date": ("结单日期", "预计签单日期"),
    "product": ("产品",),
    "owner": ("所有人", "负责人"),
}
_WK_DEALS: Headers = {
    "id": ("商机编号", "商机ID"),
    "name": ("商机名称",),
    "stage": ("商机阶段",),
    "status": ("商机状态组", "结束状态"),
    "account_id": ("客户名称",),
    "value": ("商机金额",),
    "created": ("创建时间",),
    "close_date": ("预计成交日期",),
    "product": ("产品",),
    "owner": ("负责人",),
}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "salesforce",
            "Salesforce report / Data Loader export",
            {
                "deals": _SF_DEALS,
                "history": _with(
                    _SF_DEALS,
                    closed=("Close Date", "CloseDate"),
                    sector=("Industry", "Account: Industry"),
                    region=("Billing State/Province", "Billing Country", "Region"),
                ),
                "accounts": {
                    "id": ("Account ID", "Id"),
                    "name": ("Account Name", "Name"),
                    "sector": ("Industry",),
                    "employees": ("Employees", "NumberOfEmployees"),
                    "region": ("Billing State/Province", "Billing Country", "BillingState"),
                    "owner": ("Account Owner", "OwnerId"),
                    "customer": ("Type",),
                },
                "reps": {
                    "id": ("User ID", "Id"),
                    "name": ("Full Name", "Name"),
                    "email": ("Email",),
                    "region": ("Division", "Region"),
                    "role": ("Role", "Title"),
                    "available": ("Active", "IsActive"),
                },
            },
            {
                "deals": (
                    "Fiscal Period", "Probability (%)", "Lead Source", "Next Step", "Age",
                    "Opportunity Record Type", "Stage Duration", "Fiscal Year", "Type",
                ),
                "accounts": ("Account Site", "Billing City", "Rating", "Annual Revenue", "Phone"),
                "reps": ("Alias", "Username", "Profile", "Last Login"),
            },
        ),
        Preset(
            "hubspot",
            "HubSpot export",
            {
                "deals": _HS_DEALS,
                "history": _with(
                    _HS_DEALS,
                    closed=("Close Date", "closedate"),
                    sector=("Industry",),
                    region=("Country/Region", "State/Region"),
                ),
                "accounts": {
                    "id": ("Record ID", "Company ID"),
                    "name": ("Company name", "Name"),
                    "sector": ("Industry",),
                    "employees": ("Number of Employees",),
                    "region": ("Country/Region", "State/Region", "Country"),
                    "owner": ("Company owner", "HubSpot Owner"),
                    "customer": ("Lifecycle Stage",),
                },
                "reps": {  # the users (Settings > Users & Teams) or owners export
                    "id": ("User ID", "Owner ID", "Record ID"),
                    "name": ("Name", "Full Name", "Owner", ("First Name", "Last Name"),
                             ("First name", "Last name")),
                    "email": ("Email",),
                    "region": ("Team", "Primary team", "Teams"),
                    "role": ("Role",),
                },
            },
            {
                "deals": (
                    "Pipeline", "Deal probability", "Last Activity Date", "Deal Type",
                    "Forecast category", "Associated Contact", "Deal Description",
                ),
                "accounts": (
                    "Company Domain Name", "Phone Number", "Lead Status", "Last Activity Date",
                    "City", "Create Date",
                ),
                "reps": ("First Name", "Last Name", "Seat", "Seats", "Permission set",
                         "Primary team", "Additional teams", "Last active"),
            },
        ),
        Preset(
            "zoho",
            "Zoho CRM export",
            {
                "deals": _ZOHO_DEALS,
                "history": _with(
                    _ZOHO_DEALS,
                    closed=("Closing Date",),
                    sector=("Industry",),
                    region=("Region", "Territory"),
                ),
                "accounts": {
                    "id": ("Record Id", "Account Id"),
                    "name": ("Account Name",),
                    "sector": ("Industry",),
                    "employees": ("Employees",),
                    "region": ("Billing State", "Billing Country", "Territories", "Region"),
                    "owner": ("Account Owner",),
                    "customer": ("Account Type",),
                },
                "reps": {
                    "id": ("User Id", "Record Id"),
                    "name": ("Full Name", "Name", ("First Name", "Last Name")),
                    "email": ("Email",),
                    "region": ("Territories", "Territory"),
                    "role": ("Role",),
                    "available": ("Status",),
                },
            },
            {
                "deals": (
                    "Probability (%)", "Expected Revenue", "Lead Source", "Next Step",
                    "Contact Name", "Modified Time", "Campaign Source", "Layout",
                ),
                "accounts": (
                    "Account Number", "Account Site", "Ownership", "Rating", "Annual Revenue",
                    "Modified Time", "Parent Account",
                ),
                "reps": ("Profile", "Territories", "Alias"),
            },
        ),
        Preset(
            "pipedrive",
            "Pipedrive export",
            {
                "deals": _PD_DEALS,
                "history": _with(
                    _PD_DEALS,
                    stage=("Deal - Status", "Status"),
                    closed=(
                        "Deal - Deal closed on",
                        "Deal - Close time",
                        "Deal - Won time",
                        "Deal closed on",
                    ),
                    sector=("Organization - Industry",),
                    region=("Organization - Region", "Organization - Country of Address"),
                ),
                "accounts": {
                    "id": ("Organization - ID", "ID"),
                    "name": ("Organization - Name", "Name"),
                    "sector": ("Organization - Industry", "Industry"),
                    "employees": ("Organization - Number of employees",),
                    "region": (
                        "Organization - Region",
                        "Organization - Country of Address",
                        "Organization - State/County of Address",
                    ),
                    "owner": ("Organization - Owner", "Owner"),
                    "customer": ("Organization - Label", "Label"),  # e.g. "Customer", "Hot lead"
                },
                "reps": {
                    "id": ("User - ID", "ID"),
                    "name": ("User - Name", "Name"),
                    "email": ("User - Email", "Email"),
                    "available": ("User - Active", "Active"),
                },
            },
            {
                "deals": (
                    "Deal - Currency", "Deal - Pipeline", "Deal - Contact person",
                    "Deal - Won time", "Deal - Lost time", "Deal - Lost reason",
                    "Deal - Probability", "Deal - Next activity date", "Deal - Label",
                ),
                "accounts": (
                    "Organization - Label", "Organization - People", "Organization - Open deals",
                    "Organization - Won deals", "Organization - Address",
                ),
            },
        ),
        Preset(
            "fxiaoke",
            "纷享销客 (Fxiaoke) 导出",
            {
                "deals": _FX_DEALS,
                "history": _with(
                    _FX_DEALS,
                    closed=("实际结单日期", "结单日期", "成交日期", "赢单日期"),
                    sector=("客户行业", "行业"),
                    region=("区域", "所属区域", "国家/地区"),
                ),
                "accounts": {
                    "id": ("客户编号", "数据ID", "客户ID"),
                    "name": ("客户名称",),
                    "sector": ("行业", "客户行业"),
                    "employees": ("人员规模", "员工人数"),
                    "region": ("区域", "国家/地区", "省", "国家"),
                    "owner": ("负责人",),
                    "customer": ("成交状态",),
                },
                "reps": {
                    "id": ("员工编号", "工号"),
                    "name": ("姓名",),
                    "email": ("邮箱",),
                    "region": ("主属部门", "部门"),
                    "role": ("职位",),
                    "available": ("状态",),
                },
            },
            {
                "deals": (
                    "负责人所在部门", "赢率", "最后跟进时间", "相关团队", "生命状态", "业务类型",
                    "商机来源", "阶段变更时间", "归属部门",
                ),
                "accounts": (
                    "客户级别", "客户来源", "负责人所在部门", "最后跟进时间", "生命状态",
                    "归属部门", "公海",
                ),
                "reps": ("手机号", "主属部门", "附属部门"),
            },
        ),
        Preset(
            "xiaoshouyi",
            "销售易 (Neocrm) 导出",
            {
                "deals": _XSY_DEALS,
                "history": _with(
                    _XSY_DEALS,
                    closed=("实际结单日期", "结单日期"),
                    sector=("行业",),
                    region=("区域", "地区", "国家/地区"),
                ),
                "accounts": {
                    "id": ("客户ID",),
                    "name": ("客户名称",),
                    "sector": ("行业",),
                    "employees": ("总人数", "员工人数"),
                    "region": ("区域", "国家/地区", "省份", "地区"),
                    "owner": ("所有人",),
                    "customer": ("客户状态",),
                },
                "reps": {
                    "id": ("用户ID",),
                    "name": ("姓名",),
                    "email": ("邮箱",),
                    "region": ("部门",),
                    "role": ("职务", "角色"),
                    "available": ("启用状态", "状态"),
                },
            },
            {
                "deals": (
                    "赢率", "所属部门", "商机类型", "商机来源", "输单原因", "最新跟进时间",
                    "输单描述",
                ),
                "accounts": ("客户级别", "所属部门", "客户类型", "上级客户", "电话", "公海池"),
            },
        ),
        Preset(
            "wukong",
            "悟空CRM 导出",
            {
                "deals": _WK_DEALS,
                "history": _with(
                    _WK_DEALS,
                    closed=("成交日期", "结束时间", "预计成交日期"),
                    sector=("客户行业",),
                    region=("地区", "区域"),
                ),
                "accounts": {
                    "id": ("客户编号", "客户ID"),
                    "name": ("客户名称",),
                    "sector": ("客户行业",),
                    "region": ("地区", "区域"),
                    "owner": ("负责人",),
                    "customer": ("成交状态",),
                },
            },
            {
                "deals": ("商机状态组", "创建人", "更新时间", "备注", "相关团队"),
                "accounts": ("客户级别", "客户来源", "下次联系时间", "创建人", "是否锁定"),
            },
        ),
    ]
}  # fmt: skip

_REGION = (
    "Region", "Territory", "Sales Region", "Area", "Country/Region", "Country", "State",
    "区域", "地区", "国家/地区", "所属区域", "大区", "省份", "销售区域",
)  # fmt: skip
_SECTOR = ("Sector", "Industry", "Vertical", "行业", "所属行业", "客户行业")
_OWNER = (
    "Owner", "Owner Name", "Sales Rep", "Rep", "Salesperson", "Assigned To", "Account Manager",
    "负责人", "所有人", "销售负责人", "销售人员", "跟进人", "归属人", "销售代表", "客户经理",
)  # fmt: skip
_ACCOUNT_REF = (
    "Account ID", "Company ID", "Organization ID", "Customer ID", "客户编号", "客户ID",
    "Account Name", "Company Name", "Company", "Account", "Organization", "Customer",
    "客户名称", "客户", "所属客户", "关联客户",
)  # fmt: skip
_AMOUNT = (
    "Amount", "Value", "Deal Value", "Deal Amount", "Opportunity Amount", "Total Amount",
    "Revenue", "金额", "商机金额", "销售金额", "预计金额", "预计成交金额", "机会金额",
    "合同金额", "成交金额",
)  # fmt: skip
_CREATED = (
    "Created", "Created Date", "Create Date", "Created Time", "Date Created", "Created At",
    "Creation Date", "创建时间", "创建日期", "录入时间",
)  # fmt: skip
_PRODUCT = ("Product", "Product Name", "Products", "产品", "产品名称", "意向产品")
_DEAL_ID = (
    "Deal ID", "Opportunity ID", "Record ID", "ID", "Deal Number", "商机编号", "商机ID",
    "机会编号", "编号", "记录ID",
)  # fmt: skip
_STAGE = (
    "Stage", "Deal Stage", "Sales Stage", "Stage Name", "Pipeline Stage", "Phase",
    "销售阶段", "商机阶段", "阶段", "机会阶段",
)  # fmt: skip

#: Common names per field, English then Chinese, tried after presets and default headers.
SYNONYMS: dict[str, Headers] = {
    "reps": {
        "id": ("Rep ID", "User ID", "Employee ID", "Owner ID", "ID", "员工编号", "工号",
               "员工ID", "用户ID", "用户编号"),
        "name": ("Name", "Full Name", "Rep Name", "Owner Name", "Sales Rep", "姓名",
                 "员工姓名", "名称", "销售人员", ("First Name", "Last Name"), ("姓", "名")),
        "email": ("Email", "E-mail", "Email Address", "Work Email", "邮箱", "电子邮箱",
                  "电子邮件", "邮件"),
        "region": (*_REGION, "Team"),
        "role": ("Role", "Sales Role", "角色", "岗位", "职位"),
        "sectors": ("Sectors", "Industries", "Focus Industries", "Specialties", "Verticals",
                    "擅长行业", "负责行业", "行业"),
        "capacity": ("Capacity", "Max Tasks", "Max Deals", "Workload Limit", "最大任务数",
                     "容量", "最大客户数"),
        "capacity_value": ("Capacity Value", "Value Capacity", "Max Pipeline", "Max Pipeline Value",
                           "Pipeline Capacity", "Pipeline Limit", "最大商机金额", "容量金额"),
        "quota": ("Quota", "Target", "Monthly Quota", "Sales Target", "指标", "销售指标",
                  "业绩目标", "销售目标", "月度目标"),
        "available": ("Available", "Active", "Is Active", "Availability", "Status",
                      "是否可用", "可分配", "在职状态", "状态"),
    },
    "accounts": {
        "id": ("Account ID", "Company ID", "Organization ID", "Customer ID", "Record ID", "ID",
               "客户编号", "客户ID", "客户编码"),
        "name": ("Account Name", "Company Name", "Organization Name", "Customer Name", "Name",
                 "Company", "客户名称", "公司名称", "企业名称", "客户"),
        "sector": _SECTOR,
        "employees": ("Employees", "Number of Employees", "Employee Count", "Company Size",
                      "No. of Employees", "Size", "员工人数", "人员规模", "企业规模", "员工数"),
        "region": _REGION,
        "owner": ("Account Owner", "Company Owner", *_OWNER),
        "customer": ("Customer", "Is Customer", "Existing Customer", "Lifecycle Stage",
                     "Account Type", "是否成交客户", "成交状态", "客户状态"),
    },
    "deals": {
        "id": _DEAL_ID,
        "name": ("Deal Name", "Opportunity Name", "Deal", "Opportunity", "Title",
                 "Deal Title", "Name", "商机名称", "机会名称", "销售机会名称", "项目名称",
                 "名称"),
        "stage": _STAGE,
        "status": ("Status", "Deal Status", "Outcome", "商机状态", "状态"),
        "account_id": _ACCOUNT_REF,
        "value": _AMOUNT,
        "created": _CREATED,
        "close_date": ("Close Date", "Closing Date", "Expected Close Date",
                       "Estimated Close Date", "Est. Close Date", "Target Close Date",
                       "预计成交日期", "预计成交时间", "结单日期", "预计签单日期",
                       "预计关闭日期", "预计结单日期"),
        "product": _PRODUCT,
        "owner": ("Deal Owner", "Opportunity Owner", *_OWNER),
    },
    "history": {
        "id": _DEAL_ID,
        "stage": ("Status", "Outcome", "Result", *_STAGE, "商机状态", "结果", "状态"),
        "closed": ("Closed", "Closed Date", "Close Date", "Closing Date", "Date Closed",
                   "Closed On", "Won Time", "Close Time", "Actual Close Date", "成交日期",
                   "结单日期", "关闭日期", "赢单日期", "实际结单日期", "签约日期"),
        "account_id": _ACCOUNT_REF,
        "value": _AMOUNT,
        "created": _CREATED,
        "product": _PRODUCT,
        "owner": ("Deal Owner", "Opportunity Owner", *_OWNER),
        "sector": _SECTOR,
        "region": _REGION,
    },
}  # fmt: skip
