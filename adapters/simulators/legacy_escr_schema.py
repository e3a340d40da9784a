"""The schema and code lists of the synthetic legacy ESCR, shaped like a 2000s social-care system.

Everything here is deliberately *legacy*: UPPER_CASE names, integer surrogate
keys, code columns whose meaning lives in ``LK_*`` lookup tables, dates kept as
``dd/mm/yyyy`` text in some tables and as DATE/DATETIME in others, money as text
pounds in one column and integer pence in another, and a naive local-time
``LAST_UPDATED`` on every table that extracts use as their incremental cursor.
The mapping in ``mappings/legacy_escr.yaml`` turns it into the canonical model.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
)

metadata = MetaData()


def _last_updated() -> Column[object]:
    return Column("LAST_UPDATED", DateTime, nullable=False)


LK_ETHNICITY = Table(
    "LK_ETHNICITY", metadata,
    Column("CODE", String(4), primary_key=True),
    Column("DESCRIPTION", String(60), nullable=False),
    Column("NHS_CODE", String(1)),
    Column("ACTIVE", String(1), nullable=False),
    _last_updated(),
)

LK_REL_TYPE = Table(
    "LK_REL_TYPE", metadata,
    Column("CODE", String(4), primary_key=True),
    Column("DESCRIPTION", String(60), nullable=False),
    Column("ACTIVE", String(1), nullable=False),
    _last_updated(),
)

LK_TEAM = Table(
    "LK_TEAM", metadata,
    Column("TEAM_CODE", String(4), primary_key=True),
    Column("TEAM_NAME", String(60), nullable=False),
    Column("SERVICE", String(3), nullable=False),
    Column("MANAGER_NAME", String(60)),
    Column("ACTIVE", String(1), nullable=False),
    _last_updated(),
)

LK_INV_TYPE = Table(
    "LK_INV_TYPE", metadata,
    Column("CODE", String(4), primary_key=True),
    Column("SERVICE", String(3), nullable=False),
    Column("DESCRIPTION", String(60), nullable=False),
    Column("ACTIVE", String(1), nullable=False),
    _last_updated(),
)

LK_SERVICE_TYPE = Table(
    "LK_SERVICE_TYPE", metadata,
    Column("CODE", String(4), primary_key=True),
    Column("DESCRIPTION", String(60), nullable=False),
    Column("UNIT", String(2), nullable=False),
    Column("ACTIVE", String(1), nullable=False),
    _last_updated(),
)

LK_REF_SOURCE = Table(
    "LK_REF_SOURCE", metadata,
    Column("CODE", String(4), primary_key=True),
    Column("DESCRIPTION", String(60), nullable=False),
    Column("ACTIVE", String(1), nullable=False),
    _last_updated(),
)

LK_PROVIDER = Table(
    "LK_PROVIDER", metadata,
    Column("PROVIDER_CODE", String(8), primary_key=True),
    Column("PROVIDER_NAME", String(80), nullable=False),
    Column("SERVICE_TYPE", String(4)),
    Column("ADDRESS", String(120)),
    Column("CQC_LOCATION", String(16)),
    Column("ACTIVE", String(1), nullable=False),
    _last_updated(),
)

CLIENT = Table(
    "CLIENT", metadata,
    Column("CLIENT_ID", Integer, primary_key=True, autoincrement=False),
    Column("FORENAMES", String(60)),
    Column("SURNAME", String(40)),
    Column("PREV_SURNAME", String(40)),
    Column("TITLE", String(8)),
    Column("DOB", String(10)),
    Column("GENDER", String(2)),
    Column("NHS_NO", String(12)),
    Column("NHS_VERIFIED", String(1)),
    Column("ETHNIC_CODE", String(4)),
    Column("LANGUAGE", String(3)),
    Column("INTERPRETER", String(1)),
    Column("DATE_OF_DEATH", Date),
    Column("RECORD_STATUS", String(1), nullable=False),
    _last_updated(),
)

CLIENT_ADDRESS = Table(
    "CLIENT_ADDRESS", metadata,
    Column("ADDRESS_ID", Integer, primary_key=True, autoincrement=False),
    Column("CLIENT_ID", Integer, ForeignKey("CLIENT.CLIENT_ID"), nullable=False),
    Column("ADDRESS_TYPE", String(1), nullable=False),
    Column("FLAT", String(20)),
    Column("HOUSE_NO", String(10)),
    Column("HOUSE_NAME", String(40)),
    Column("STREET", String(60)),
    Column("LOCALITY", String(40)),
    Column("TOWN", String(40)),
    Column("POSTCODE", String(10)),
    Column("START_DATE", String(10)),
    Column("END_DATE", String(10)),
    _last_updated(),
)

RELATIONSHIP = Table(
    "RELATIONSHIP", metadata,
    Column("REL_ID", Integer, primary_key=True, autoincrement=False),
    Column("CLIENT_ID", Integer, ForeignKey("CLIENT.CLIENT_ID"), nullable=False),
    Column("RELATED_CLIENT_ID", Integer, ForeignKey("CLIENT.CLIENT_ID")),
    Column("RELATED_NAME", String(80)),
    Column("REL_TYPE", String(4)),
    Column("NOK_FLAG", String(1)),
    Column("PARENTAL_RESP", String(1)),
    Column("START_DATE", String(10)),
    Column("END_DATE", String(10)),
    _last_updated(),
)

INVOLVEMENT = Table(
    "INVOLVEMENT", metadata,
    Column("INV_ID", Integer, primary_key=True, autoincrement=False),
    Column("CLIENT_ID", Integer, ForeignKey("CLIENT.CLIENT_ID"), nullable=False),
    Column("SERVICE", String(3), nullable=False),
    Column("INV_TYPE", String(4)),
    Column("START_DT", DateTime),
    Column("END_DT", DateTime),
    Column("TEAM_CODE", String(4)),
    Column("WORKER_NAME", String(60)),
    Column("END_REASON", String(6)),
    Column("LEGAL_STATUS", String(3)),
    _last_updated(),
)

REFERRAL = Table(
    "REFERRAL", metadata,
    Column("REF_ID", Integer, primary_key=True, autoincrement=False),
    Column("CLIENT_ID", Integer, ForeignKey("CLIENT.CLIENT_ID"), nullable=False),
    Column("SERVICE", String(3), nullable=False),
    Column("REF_DATE", DateTime),
    Column("REF_SOURCE", String(4)),
    Column("REASON", String(8)),
    Column("OUTCOME", String(4)),
    Column("DECISION_DATE", String(10)),
    _last_updated(),
)

ASSESSMENT = Table(
    "ASSESSMENT", metadata,
    Column("ASMT_ID", Integer, primary_key=True, autoincrement=False),
    Column("CLIENT_ID", Integer, ForeignKey("CLIENT.CLIENT_ID"), nullable=False),
    Column("SERVICE", String(3), nullable=False),
    Column("ASMT_TYPE", String(4)),
    Column("START_DATE", String(10)),
    Column("COMPLETED_DATE", String(10)),
    Column("AUTH_DATE", String(10)),
    Column("OUTCOME", String(4)),
    Column("ELIGIBLE", String(1)),
    Column("FACTORS", String(40)),
    Column("WORKER_NAME", String(60)),
    _last_updated(),
)

CARE_PLAN = Table(
    "CARE_PLAN", metadata,
    Column("PLAN_ID", Integer, primary_key=True, autoincrement=False),
    Column("CLIENT_ID", Integer, ForeignKey("CLIENT.CLIENT_ID"), nullable=False),
    Column("SERVICE", String(3), nullable=False),
    Column("PLAN_TYPE", String(4)),
    Column("START_DATE", Date),
    Column("END_DATE", Date),
    Column("STATUS", String(2)),
    Column("APPROVED_BY", String(60)),
    Column("APPROVED_DATE", Date),
    Column("BUDGET_PENCE", Integer),
    Column("ABUSE_CAT", String(3)),
    _last_updated(),
)

PLAN_SERVICE = Table(
    "PLAN_SERVICE", metadata,
    Column("SVC_ID", Integer, primary_key=True, autoincrement=False),
    Column("PLAN_ID", Integer, ForeignKey("CARE_PLAN.PLAN_ID"), nullable=False),
    Column("CLIENT_ID", Integer, ForeignKey("CLIENT.CLIENT_ID"), nullable=False),
    Column("SERVICE_TYPE", String(4)),
    Column("PROVIDER_CODE", String(8)),
    Column("PROVIDER_NAME", String(80)),
    Column("UNIT_COST", String(10)),
    Column("UNIT", String(2)),
    Column("UNITS_PER_WEEK", Numeric(6, 2, asdecimal=False)),
    Column("START_DATE", String(10)),
    Column("END_DATE", String(10)),
    Column("STATUS", String(2)),
    Column("APPROVED_BY", String(60)),
    Column("APPROVED_DATE", String(10)),
    Column("CONTRIB_WEEKLY", String(10)),
    Column("FUNDING", String(4)),
    _last_updated(),
)

LOOKUP_TABLES: tuple[Table, ...] = (
    LK_ETHNICITY, LK_REL_TYPE, LK_TEAM, LK_INV_TYPE, LK_SERVICE_TYPE, LK_REF_SOURCE, LK_PROVIDER,
)

# Data tables in write order (parents first) with their surrogate-key column.
DATA_TABLES: tuple[tuple[Table, str], ...] = (
    (CLIENT, "CLIENT_ID"),
    (CLIENT_ADDRESS, "ADDRESS_ID"),
    (RELATIONSHIP, "REL_ID"),
    (REFERRAL, "REF_ID"),
    (ASSESSMENT, "ASMT_ID"),
    (INVOLVEMENT, "INV_ID"),
    (CARE_PLAN, "PLAN_ID"),
    (PLAN_SERVICE, "SVC_ID"),
)

# Extract indexes a legacy DBA would have added: the cursor (LAST_UPDATED, key) and child lookups.
INDEXES: tuple[Index, ...] = tuple(
    Index(f"IX_{table.name}_LAST_UPDATED", table.c.LAST_UPDATED, table.c[key])
    for table, key in DATA_TABLES
) + tuple(
    Index(f"IX_{table.name}_CLIENT_ID", table.c.CLIENT_ID)
    for table, _ in DATA_TABLES[1:]
) + (Index("IX_PLAN_SERVICE_PLAN_ID", PLAN_SERVICE.c.PLAN_ID),)


# --- code lists ---------------------------------------------------------------------------


class Code(NamedTuple):
    """One entry of a legacy code list: the code, what it means, and how often it is used."""

    code: str
    description: str
    weight: float = 1.0
    extra: str | None = None


# Children's-services (CIN census style) ethnicity codes; ``extra`` is the NHS ethnic category.
ETHNICITIES: tuple[Code, ...] = (
    Code("WBRI", "White British", 70, "A"), Code("WIRI", "White Irish", 2, "B"),
    Code("WOTH", "Any other White background", 6, "C"), Code("WROM", "Gypsy/Roma", 0.5, "C"),
    Code("MWBC", "White and Black Caribbean", 1.5, "D"),
    Code("MWBA", "White and Black African", 0.7, "E"), Code("MWAS", "White and Asian", 1, "F"),
    Code("MOTH", "Any other mixed background", 1, "G"), Code("AIND", "Indian", 2.5, "H"),
    Code("APKN", "Pakistani", 3, "J"), Code("ABAN", "Bangladeshi", 1, "K"),
    Code("AOTH", "Any other Asian background", 1, "L"), Code("BCRB", "Caribbean", 1, "M"),
    Code("BAFR", "African", 2, "N"), Code("BOTH", "Any other Black background", 0.5, "P"),
    Code("CHNE", "Chinese", 0.5, "R"), Code("OOTH", "Any other ethnic group", 1, "S"),
    Code("REFU", "Refused", 1, "Z"), Code("NOBT", "Information not yet obtained", 2, "Z"),
)

LANGUAGES: tuple[Code, ...] = (
    Code("ENG", "English", 88), Code("POL", "Polish", 3), Code("URD", "Urdu", 2),
    Code("PAN", "Punjabi", 1.5), Code("BEN", "Bengali", 1), Code("ARA", "Arabic", 1),
    Code("SOM", "Somali", 0.7), Code("RUM", "Romanian", 1), Code("GUJ", "Gujarati", 0.8),
)

# REL_TYPE says what the *related* person is to the client (MOT: the related person is the mother).
REL_TYPES: tuple[Code, ...] = (
    Code("MOT", "Mother"), Code("FAT", "Father"), Code("SON", "Son"), Code("DAU", "Daughter"),
    Code("BRO", "Brother"), Code("SIS", "Sister"), Code("HSB", "Half-sibling"),
    Code("SPO", "Spouse/Partner"), Code("GMO", "Grandmother"), Code("GFA", "Grandfather"),
    Code("CAR", "Carer (unpaid)"), Code("FCA", "Foster carer"), Code("SGO", "Special guardian"),
    Code("NEI", "Neighbour"), Code("FRI", "Friend"), Code("OTH", "Other"),
)

# ``extra`` is the service (CSC children's, ASC adults').
INV_TYPES: tuple[Code, ...] = (
    Code("CIN", "Child in need", 1, "CSC"), Code("CP", "Child protection", 1, "CSC"),
    Code("LAC", "Looked after child", 1, "CSC"), Code("CL", "Care leaver", 1, "CSC"),
    Code("PF", "Private fostering", 1, "CSC"), Code("LTS", "Long term support", 1, "ASC"),
    Code("STS", "Short term support (reablement)", 1, "ASC"),
    Code("SG", "Safeguarding enquiry (s42)", 1, "ASC"), Code("CS", "Carer support", 1, "ASC"),
    Code("DOL", "Deprivation of liberty safeguards", 1, "ASC"),
)

# ``extra`` is the service the team belongs to.
TEAMS: tuple[Code, ...] = (
    Code("CF01", "Front Door (MASH)", 1, "CSC"), Code("CF02", "Children in Need North", 1, "CSC"),
    Code("CF03", "Children in Need South", 1, "CSC"), Code("CF04", "Child Protection", 1, "CSC"),
    Code("CF05", "Children Looked After", 1, "CSC"), Code("CF06", "Leaving Care", 1, "CSC"),
    Code("AD01", "Adults Access Team", 1, "ASC"), Code("AD02", "Older People North", 1, "ASC"),
    Code("AD03", "Older People South", 1, "ASC"), Code("AD04", "Learning Disability", 1, "ASC"),
    Code("AD05", "Community Mental Health", 1, "ASC"), Code("AD06", "Safeguarding Adults", 1, "ASC"),
    Code("AD07", "Reablement", 1, "ASC"),
)

# ``extra`` is the unit the cost is per (HR hour, DY day, WK week, NT night, IT item).
SERVICE_TYPES: tuple[Code, ...] = (
    Code("HC", "Home care", 1, "HR"), Code("RES", "Residential care", 1, "WK"),
    Code("NUR", "Nursing care", 1, "WK"), Code("DAY", "Day care", 1, "DY"),
    Code("DP", "Direct payment", 1, "WK"), Code("TEL", "Telecare", 1, "WK"),
    Code("RESP", "Respite care", 1, "NT"), Code("MEAL", "Meals", 1, "IT"),
    Code("FOST", "Fostering placement", 1, "WK"),
)

REF_SOURCES: tuple[Code, ...] = (
    Code("SCH", "School", 3), Code("POL", "Police", 3), Code("HV", "Health visitor", 1),
    Code("GP", "GP", 2), Code("HOSP", "Hospital", 3), Code("LA", "Other LA service", 1),
    Code("FAM", "Family member or friend", 2), Code("SELF", "Self", 2),
    Code("ANON", "Anonymous", 0.5), Code("OTH", "Other", 0.5),
)

# Children's primary need (CIN census N1-N9) and adults' primary support reason.
CSC_REASONS: tuple[Code, ...] = (
    Code("N1", "Abuse or neglect", 50), Code("N2", "Child's disability", 8),
    Code("N3", "Parental illness or disability", 4), Code("N4", "Family in acute stress", 10),
    Code("N5", "Family dysfunction", 16), Code("N6", "Socially unacceptable behaviour", 3),
    Code("N7", "Low income", 1), Code("N8", "Absent parenting", 3),
    Code("N9", "Cases other than children in need", 5),
)
ASC_REASONS: tuple[Code, ...] = (
    Code("PHY", "Physical support", 55), Code("SEN", "Sensory support", 3),
    Code("MEM", "Support with memory and cognition", 12), Code("LD", "Learning disability support", 12),
    Code("MH", "Mental health support", 13), Code("SOC", "Social support", 5),
)

REFERRAL_OUTCOMES: tuple[Code, ...] = (
    Code("ASMT", "Progressed to assessment", 75), Code("NFA", "No further action", 10),
    Code("SIGN", "Signposted", 7), Code("EH", "Early help", 4), Code("INFO", "Information and advice", 4),
)

ASSESSMENT_TYPES: tuple[Code, ...] = (
    Code("SA", "Single assessment", 1, "CSC"), Code("S47", "Section 47 enquiry", 1, "CSC"),
    Code("NA", "Care Act needs assessment", 1, "ASC"), Code("CA", "Carer's assessment", 1, "ASC"),
    Code("FA", "Financial assessment", 1, "ASC"), Code("MCA", "Mental capacity assessment", 1, "ASC"),
    Code("S58", "Transition assessment (s58)", 1, "ASC"), Code("SGE", "Safeguarding enquiry", 1, "ASC"),
)

ASSESSMENT_OUTCOMES: tuple[Code, ...] = (
    Code("CIN", "Child in need"), Code("CP", "Child protection plan"), Code("LAC", "Looked after"),
    Code("LTS", "Long term support"), Code("STS", "Short term support"),
    Code("UNIV", "Universal services"), Code("NFA", "No further action"),
    Code("SGP", "Safeguarding plan"),
)

# CIN census assessment factors (a sample of the published list).
FACTORS: tuple[str, ...] = (
    "1A", "1B", "1C", "2A", "2B", "2C", "3A", "3B", "3C", "4A", "4B", "4C", "5A", "5B", "5C",
    "6A", "6B", "6C", "7A", "8B", "8C", "8D", "8E", "8F", "9A", "10A", "11A", "12A", "13A",
    "14A", "15A", "16A", "17A", "18B", "18C", "19A", "19B", "20", "21", "22A", "23A", "24A",
)

PLAN_TYPES: tuple[Code, ...] = (
    Code("CINP", "Child in need plan", 1, "CSC"), Code("CPP", "Child protection plan", 1, "CSC"),
    Code("CARE", "Looked after care plan", 1, "CSC"), Code("PATH", "Pathway plan", 1, "CSC"),
    Code("SUPP", "Support plan", 1, "ASC"), Code("CARR", "Carer's support plan", 1, "ASC"),
)

PLAN_STATUSES: tuple[Code, ...] = (
    Code("DR", "Draft"), Code("AW", "Awaiting authorisation"), Code("AU", "Authorised"),
    Code("RJ", "Rejected"), Code("CL", "Closed"), Code("CN", "Cancelled"),
)

ABUSE_CATEGORIES: tuple[Code, ...] = (
    Code("NEG", "Neglect", 50), Code("EMO", "Emotional abuse", 35), Code("PHY", "Physical abuse", 7),
    Code("SEX", "Sexual abuse", 4), Code("MUL", "Multiple", 4),
)

CSC_END_REASONS: tuple[Code, ...] = (
    Code("RC1", "Adopted", 2), Code("RC3", "Child arrangements order", 3),
    Code("RC4", "Special guardianship order", 3), Code("RC5", "Transferred to another LA", 6),
    Code("RC6", "Transferred to adult social care", 3), Code("RC7", "Moved permanently", 5),
    Code("RC8", "Closed after assessment, no further action", 40),
    Code("RC9", "Closed, referred to early help", 20),
)
ASC_END_REASONS: tuple[Code, ...] = (
    Code("GOALS", "Goals met", 40), Code("NFA", "No further action", 20),
    Code("MOVED", "Moved out of area", 10), Code("CHC", "NHS continuing healthcare", 8),
    Code("RESID", "Moved to residential care", 10), Code("DIED", "Died", 12),
)

LEGAL_STATUSES: tuple[Code, ...] = (
    Code("C2", "Full care order", 50), Code("V2", "Accommodated under s20", 30),
    Code("C1", "Interim care order", 12), Code("E1", "Placement order", 6),
    Code("J2", "PACE transfer", 2),
)

FUNDING_CODES: tuple[Code, ...] = (
    Code("LA", "Council funded", 80), Code("CHC", "NHS continuing healthcare", 8),
    Code("JNT", "Joint funded", 7), Code("SELF", "Self funder (council arranged)", 5),
)

# Codes planted as the "unknown code" dirt: none of them is in a lookup or in the mapping.
UNKNOWN_CODES: dict[str, tuple[str, ...]] = {
    "GENDER": ("X", "9"),
    "INV_TYPE": ("OLD", "ZZ"),
    "SERVICE_TYPE": ("MISC", "XX"),
    "STATUS": ("P", "Z"),
}
